package portal

import (
	"strings"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/sam"
)

// dict holds the portal's strings in English and Italian. A key missing
// in Italian falls back to English; a key missing in both shows as is
// (TestDictionaryCoversTemplates guards against that).
var dict = map[string]map[string]string{"en": en, "it": it}

var en = map[string]string{
	"nav.skip": "Skip to content", "nav.label": "Main", "nav.home": "My certificate", "nav.history": "Signature history",
	"nav.password": "Password", "nav.login": "Log in", "nav.register": "Register", "nav.emergency": "Emergency suspension",
	"nav.logout": "Log out", "footer": "remote qualified signature · self-care", "choose": "— choose —",
	"back.home": "Back to my certificate", "cancel": "Cancel",

	"title.error": "Something went wrong", "title.register": "Create your account", "title.registered": "Check your e-mail",
	"title.verify": "E-mail confirmation", "title.login": "Log in", "title.password": "Change password",
	"title.home": "My certificate", "title.request": "Certificate request", "title.pin": "Change PIN",
	"title.unblock": "Unblock PIN with the PUK", "title.activate": "Activate the certificate", "title.reactivate": "Reactivate the certificate",
	"title.renew": "Renew the certificate", "title.suspend": "Suspend the certificate", "title.revoke": "Revoke the certificate",
	"title.otp": "Manage OTP", "title.history": "Signature history", "title.emergency": "Emergency suspension or revocation",

	"flash.otp_sent": "We sent a code by SMS to your mobile number. It is valid for a short time.",
	"flash.verified": "Your e-mail address is confirmed. You can now log in.", "flash.password_changed": "Your password has been changed.",
	"flash.issued":      "Your certificate has been issued. The envelope with the PUK and the emergency code has been sent to your e-mail.",
	"flash.pin_changed": "Your PIN has been changed.", "flash.pin_unblocked": "Your PIN is unblocked and set to the new value.",
	"flash.activated": "Your certificate is active. You can sign with your new PIN.", "flash.reactivated": "Your certificate is valid again.",
	"title.envelope": "New envelope (PUK and ERC)", "envelope.lead": "Lost your envelope? With your PIN and a one-time code you get a new PUK and a new emergency code (ERC), by e-mail in an envelope that opens with the passphrase you choose now. The old codes stop working.",
	"envelope.submit": "Send me a new envelope", "flash.new_envelope": "A new envelope with your new PUK and ERC is on its way to your e-mail address. The old codes no longer work.",
	"flash.renewed": "Your certificate has been renewed.", "flash.suspended": "Your certificate is suspended. Nobody can sign with it until you reactivate it.",
	"flash.revoked": "Your certificate has been revoked.", "flash.otp_ok": "The code is correct: your OTP works.",
	"flash.phone_changed":     "Your mobile number has been changed.",
	"flash.emergency_suspend": "The certificate is suspended, effective immediately. Log in and reactivate it when it is safe.",
	"flash.emergency_revoke":  "The certificate is revoked, effective immediately.",

	"err.form": "Please correct the fields marked below.", "err.csrf": "This form has expired or did not come from this site. Nothing was changed: reload the page and try again.",
	"err.internal":      "Something went wrong on our side. Nothing was changed; please try again later.",
	"err.no_credential": "You have no certificate yet.",
	"err.required":      "This field is required.", "err.too_long": "This value is too long.",
	"err.email_format": "Enter a valid e-mail address, e.g. name@example.com.", "err.email_taken": "An account with this e-mail address already exists.",
	"err.password_policy": "The password does not meet the rules listed.", "err.mismatch": "The two values do not match.",
	"err.country": "Choose a country from the list.", "err.consent_required": "You must give this consent to use the service.",
	"err.fiscal_code":  "Enter a valid Italian fiscal code (16 characters).",
	"err.phone_format": "Enter the mobile number in international format, e.g. +393331234567.",
	"err.date_format":  "Enter a date as YYYY-MM-DD.", "err.underage": "The holder must be at least 18 years old.",
	"err.expired": "The document has expired.", "err.choice": "Choose one of the allowed values.",
	"err.doc_number": "Enter the document number: 5 to 20 letters and digits.", "err.pin_format": "The PIN must be exactly 8 digits.",
	"err.passphrase_policy": "The passphrase must be 8 to 128 characters long.", "err.acceptance": "You must confirm this to continue.",
	"err.otp_format": "The code is 6 to 8 digits.", "err.puk_format": "The PUK is exactly 8 digits (see your envelope).",
	"err.confirm": "Type the confirmation word exactly as shown.", "err.bound": "This e-mail address or mobile number already has an active certificate.",
	"err.invalid_otp": "The code is wrong or has expired.",
	"err.doc_foreign": "Without an Italian fiscal code, identify with a passport or an identity card.",

	"f.email": "E-mail address", "f.password": "Password", "f.passwordConfirm": "Repeat the password", "f.country": "Country of residence",
	"f.consentProcessing": "I consent to the processing of my personal data to provide the signature service (required).",
	"f.consentMarketing":  "I agree to receive news and offers by e-mail (optional).",
	"f.userID":            "UserID", "f.login": "E-mail or UserID", "f.currentPassword": "Current password", "f.newPassword": "New password",
	"f.newPasswordConfirm": "Repeat the new password", "f.currentPIN": "Current PIN", "f.newPIN": "New PIN", "f.newPINConfirm": "Repeat the new PIN",
	"f.otp": "One-time code (OTP)", "f.puk": "PUK", "f.pin": "PIN", "f.newPhone": "New mobile number", "f.otp_old_phone": "Code sent to your current number",
	"f.iut": "IUT (identifying code) or UserID", "f.erc": "Emergency code (ERC)", "f.action": "What do you want to do?",
	"f.givenName": "Given name", "f.surname": "Surname", "f.fiscalCode": "Fiscal code", "f.birthDate": "Date of birth",
	"f.phone": "Mobile number", "f.method": "Identification method", "f.docType": "Document type", "f.docNumber": "Document number",
	"f.docCountry": "Issuing country", "f.docExpiry": "Document expiry date",
	"f.acceptContract": "I have read and accept the contract for the qualified signature service.",
	"f.acceptPrivacy":  "I have read the privacy notice and accept the processing for certificate issuance.",
	"f.passphrase":     "Envelope passphrase", "f.passphraseConfirm": "Repeat the passphrase", "f.otp_sign": "Code received by SMS (signs the contract)",

	"help.password":   "Choose a password that follows every rule below.",
	"help.login":      "The e-mail address you registered with, or the UserID an operator gave you.",
	"help.pin":        "8 digits. You will type it for every signature; nobody else knows it.",
	"help.puk":        "8 digits, printed in your envelope.",
	"help.phone":      "International format, e.g. +393331234567.",
	"help.iut":        "Printed in your envelope (10 characters). Your UserID works too.",
	"help.erc":        "Printed in your envelope (12 characters).",
	"help.fiscalCode": "16 characters, as on your health insurance card.",
	"help.date":       "Format YYYY-MM-DD.",
	"help.passphrase": "You will need it to open the PDF envelope with your PUK and emergency code. We do not keep it.",

	"register.lead": "Create an account to request your remote signature certificate.", "register.consents": "Consents",
	"register.submit": "Create account", "register.have_account": "I already have an account",
	"registered.sent": "We sent a confirmation link to %s. Open it to activate your account.",
	"title.resend":    "New confirmation link", "resend.lead": "Registered but never confirmed your e-mail address, or the link expired? Enter the address: we send a new link and the old one stops working.",
	"resend.submit": "Send a new link", "resend.link": "Get a new confirmation link",
	"flash.resent": "If this address belongs to an account that is not confirmed yet, a new link is on its way. Check your inbox.",
	"verify.again": "The link may have expired or been replaced by a newer one.", "login.unconfirmed": "Did not get the confirmation e-mail?",
	"registered.next": "Keep your UserID: you can use it, or your e-mail address, to log in.",
	"login.submit":    "Log in", "login.lost": "Lost your phone or envelope?",
	"password.forced": "Your password is temporary or has expired: choose a new one to continue.", "password.submit": "Change password",

	"home.hello": "Hello", "home.request": "Your certificate request", "home.request_open": "Open the request",
	"home.no_cert": "You have no certificate yet", "home.no_cert_help": "Request a qualified signature certificate: it takes a few minutes plus the identification check.",
	"home.request_new": "Request a certificate", "home.certificate": "Signature certificate", "home.subject": "Holder", "home.holder_id": "Holder identifier",
	"home.serial": "Serial number", "home.issuer": "Issued by", "home.valid_to": "Valid until", "home.days_left": "%d days left",
	"home.otp": "OTP", "home.sig_week": "signatures in the last 7 days", "home.sig_total": "signatures in total", "home.tasks": "What you can do",

	"status.valid": "Valid", "status.suspended": "Suspended", "status.revoked": "Revoked", "status.expired": "Expired",
	"status.pin_blocked": "PIN blocked", "status.not_activated": "Not activated",
	"otp.type.sms": "SMS to your mobile", "otp.type.totp": "Authenticator app", "otp.type.none": "None",
	"otp.sms_help": "First ask for a code: we send it by SMS to your mobile number.", "otp.totp_help": "Use the code shown by your authenticator app.",
	"otp.send": "Send me a code", "otp.lead": "Check that your one-time codes work, or change the mobile number they are sent to.",
	"otp.test": "Test your OTP", "otp.test_submit": "Check the code", "otp.phone": "Change mobile number",
	"otp.phone_help": "Ask for a code (it goes to your current number), then type the new number and the code.", "otp.phone_submit": "Change number",

	"pin.lead": "To change the PIN you need the current PIN and a one-time code.", "pin.submit": "Change PIN", "pin.forgot": "PIN blocked or forgotten?",
	"unblock.lead": "A PIN blocks after 3 wrong attempts. Use the PUK from your envelope to choose a new one.", "unblock.submit": "Unblock and set the new PIN",
	"activate.lead":   "Your certificate was issued but is not active yet. Use the PUK from your envelope and a one-time code to choose your PIN.",
	"activate.submit": "Activate", "reactivate.lead": "Your certificate is suspended. Confirm with PIN and one-time code to make it valid again.",
	"reactivate.submit": "Reactivate", "renew.lead": "Renewing issues a new certificate for your key; the current one is replaced.",
	"renew.submit": "Renew", "suspend.lead": "While suspended, nobody can sign with your certificate. You can reactivate it later with PIN and OTP.",
	"suspend.confirm": "I want to suspend my certificate now.", "suspend.submit": "Suspend",
	"revoke.lead":   "Revocation is final: the certificate can never be used again and you will need a new one.",
	"revoke.second": "Second confirmation: this cannot be undone.", "revoke.type_word": "Type REVOKE to confirm",
	"revoke.word": "REVOKE", "revoke.submit_final": "Revoke for good", "revoke.understand": "I understand that revocation is final.",
	"revoke.submit": "Continue",

	"history.when": "When", "history.action": "Operation", "history.count": "Signatures", "history.outcome": "Outcome",
	"history.authorize": "Authorization", "history.sign": "Signature", "history.extend": "Extension", "history.ok": "Success",
	"history.empty": "No signatures yet.", "history.newer": "Newer", "history.older": "Older",

	"emergency.lead":    "Lost your phone or your envelope? With the codes in your envelope you can stop your certificate at once, without logging in.",
	"emergency.suspend": "Suspend (you can reactivate it later)", "emergency.revoke": "Revoke (final)",
	"emergency.understand": "If I chose to revoke, I understand that revocation is final.", "emergency.submit": "Confirm",

	"request.lead":   "Fill in the holder's data and the identification evidence. An operator checks it before the certificate is issued.",
	"request.holder": "Holder", "request.identification": "Identification",
	"request.identification_help": "How you were identified and the document you showed.",
	"request.submit":              "Send request", "request.status.pending": "Your identification is being checked by an operator.",
	"request.status.approved": "Your identification was approved: sign the contract to get the certificate.",
	"request.status.rejected": "Your identification was rejected.", "request.status.issued": "Your certificate has been issued.",
	"request.status.issuing": "Your certificate is being issued.",
	"request.pending_help":   "This usually takes a few minutes. Reload this page to check.", "request.refresh": "Check again",
	"request.approved": "Your identification was approved.", "request.otp_help": "Signing the contract is confirmed with a code sent by SMS to the mobile number you gave.",
	"request.acceptances": "Contract", "request.pin": "Choose your PIN", "request.envelope": "Envelope passphrase",
	"request.sign": "Sign the contract and issue the certificate", "request.rejected": "Your previous request was rejected:",

	"contract.title": "Contract for the qualified remote signature service",
	"contract.text":  "The provider issues a qualified certificate to the holder and keeps the signing key in a certified device (HSM). The holder keeps PIN, PUK and emergency code secret, uses the certificate only personally, and suspends or revokes it at once if the device or the codes are lost. The certificate is valid for three years unless suspended or revoked.",
	"privacy.title":  "Privacy notice",
	"privacy.text":   "Personal data are processed by the provider to identify the holder and to issue and manage the certificate (Regulation (EU) 2016/679 and eIDAS). Identification evidence is kept for 20 years as the law requires. The holder may exercise the rights of access, rectification and objection by contacting the provider.",

	"method.edoc-nfc": "Electronic document read by NFC", "method.video-operator": "Video call with an operator",
	"method.video-self": "Self-recorded video", "method.cie": "CIE (Italian electronic identity card)",
	"doc.identity-card": "Identity card", "doc.passport": "Passport", "doc.driving-licence": "Driving licence",
	"rule.all_ok": "The password meets every rule.", "rule.some_bad": "The password does not meet every rule yet.",
	"history.caption": "Certificate",
	"totp.title":      "Authenticator app", "totp.help": "Use codes from an authenticator app (TOTP) instead of SMS: it works without mobile coverage.",
	"totp.start": "Set up an authenticator app", "totp.scan": "Scan this QR code with your authenticator app, then type the code it shows.",
	"totp.qr_alt": "QR code to add sigillo to your authenticator app", "totp.manual": "Or enter this key by hand:",
	"totp.submit": "Confirm and switch to the app", "f.code_new": "Code shown by the app", "f.otp_current": "Current one-time code",
	"help.otp_current":    "The code you use today (ask for an SMS above, or read your current app).",
	"flash.totp_enrolled": "Your one-time codes now come from the authenticator app.",
	"err.invalid_new_otp": "The code from the app is wrong: check the app's clock and try the next code.",

	// Domain messages that read better with a hint of what to do.
	"msg.PIN locked": "Your PIN is blocked after too many wrong attempts: unblock it with the PUK from your envelope.",
}

var it = map[string]string{
	"nav.skip": "Vai al contenuto", "nav.label": "Principale", "nav.home": "Il mio certificato", "nav.history": "Storico firme",
	"nav.password": "Password", "nav.login": "Accedi", "nav.register": "Registrati", "nav.emergency": "Sospensione d'emergenza",
	"nav.logout": "Esci", "footer": "firma remota qualificata · area personale", "choose": "— scegli —",
	"back.home": "Torna al mio certificato", "cancel": "Annulla",

	"title.error": "Si è verificato un problema", "title.register": "Crea il tuo account", "title.registered": "Controlla la tua e-mail",
	"title.verify": "Conferma e-mail", "title.login": "Accedi", "title.password": "Cambia password",
	"title.home": "Il mio certificato", "title.request": "Richiesta di certificato", "title.pin": "Cambia PIN",
	"title.unblock": "Sblocca il PIN con il PUK", "title.activate": "Attiva il certificato", "title.reactivate": "Riattiva il certificato",
	"title.renew": "Rinnova il certificato", "title.suspend": "Sospendi il certificato", "title.revoke": "Revoca il certificato",
	"title.otp": "Gestisci OTP", "title.history": "Storico firme", "title.emergency": "Sospensione o revoca d'emergenza",

	"flash.otp_sent": "Ti abbiamo inviato un codice via SMS. Vale per poco tempo.",
	"flash.verified": "Indirizzo e-mail confermato. Ora puoi accedere.", "flash.password_changed": "La password è stata cambiata.",
	"flash.issued":      "Il certificato è stato emesso. La busta con PUK e codice di emergenza è stata inviata alla tua e-mail.",
	"flash.pin_changed": "Il PIN è stato cambiato.", "flash.pin_unblocked": "Il PIN è sbloccato e impostato al nuovo valore.",
	"flash.activated": "Il certificato è attivo. Puoi firmare con il nuovo PIN.", "flash.reactivated": "Il certificato è di nuovo valido.",
	"title.envelope": "Nuova busta (PUK ed ERC)", "envelope.lead": "Hai perso la busta? Con il PIN e un codice monouso ricevi un nuovo PUK e un nuovo codice di emergenza (ERC), via e-mail in una busta che si apre con la passphrase che scegli ora. I vecchi codici non valgono più.",
	"envelope.submit": "Inviami una nuova busta", "flash.new_envelope": "Una nuova busta con il nuovo PUK e il nuovo ERC sta arrivando al tuo indirizzo e-mail. I vecchi codici non valgono più.",
	"flash.renewed": "Il certificato è stato rinnovato.", "flash.suspended": "Il certificato è sospeso: nessuno può firmare finché non lo riattivi.",
	"flash.revoked": "Il certificato è stato revocato.", "flash.otp_ok": "Il codice è corretto: l'OTP funziona.",
	"flash.phone_changed":     "Il numero di cellulare è stato cambiato.",
	"flash.emergency_suspend": "Il certificato è sospeso con effetto immediato. Accedi e riattivalo quando è sicuro.",
	"flash.emergency_revoke":  "Il certificato è revocato con effetto immediato.",

	"err.form": "Correggi i campi indicati sotto.", "err.csrf": "Il modulo è scaduto o non proviene da questo sito. Nulla è stato modificato: ricarica la pagina e riprova.",
	"err.internal":      "Si è verificato un errore da parte nostra. Nulla è stato modificato; riprova più tardi.",
	"err.no_credential": "Non hai ancora un certificato.",
	"err.required":      "Campo obbligatorio.", "err.too_long": "Il valore è troppo lungo.",
	"err.email_format": "Inserisci un indirizzo e-mail valido, ad es. nome@esempio.it.", "err.email_taken": "Esiste già un account con questo indirizzo e-mail.",
	"err.password_policy": "La password non rispetta le regole elencate.", "err.mismatch": "I due valori non coincidono.",
	"err.country": "Scegli un paese dall'elenco.", "err.consent_required": "Questo consenso è necessario per usare il servizio.",
	"err.fiscal_code":  "Inserisci un codice fiscale valido (16 caratteri).",
	"err.phone_format": "Inserisci il cellulare in formato internazionale, ad es. +393331234567.",
	"err.date_format":  "Inserisci la data come AAAA-MM-GG.", "err.underage": "Il titolare deve essere maggiorenne.",
	"err.expired": "Il documento è scaduto.", "err.choice": "Scegli uno dei valori ammessi.",
	"err.doc_number": "Inserisci il numero del documento: da 5 a 20 lettere e cifre.", "err.pin_format": "Il PIN è di esattamente 8 cifre.",
	"err.passphrase_policy": "La passphrase deve avere da 8 a 128 caratteri.", "err.acceptance": "Devi confermare per proseguire.",
	"err.otp_format": "Il codice è di 6-8 cifre.", "err.puk_format": "Il PUK è di esattamente 8 cifre (vedi la busta).",
	"err.confirm": "Scrivi la parola di conferma esattamente come indicato.", "err.bound": "Questo indirizzo e-mail o cellulare ha già un certificato attivo.",
	"err.invalid_otp": "Il codice è errato o scaduto.",
	"err.doc_foreign": "Senza codice fiscale italiano, identificati con passaporto o carta d'identità.",

	"f.email": "Indirizzo e-mail", "f.password": "Password", "f.passwordConfirm": "Ripeti la password", "f.country": "Paese di residenza",
	"f.consentProcessing": "Acconsento al trattamento dei miei dati personali per l'erogazione del servizio di firma (obbligatorio).",
	"f.consentMarketing":  "Accetto di ricevere novità e offerte via e-mail (facoltativo).",
	"f.userID":            "UserID", "f.login": "E-mail o UserID", "f.currentPassword": "Password attuale", "f.newPassword": "Nuova password",
	"f.newPasswordConfirm": "Ripeti la nuova password", "f.currentPIN": "PIN attuale", "f.newPIN": "Nuovo PIN", "f.newPINConfirm": "Ripeti il nuovo PIN",
	"f.otp": "Codice monouso (OTP)", "f.puk": "PUK", "f.pin": "PIN", "f.newPhone": "Nuovo numero di cellulare", "f.otp_old_phone": "Codice inviato al numero attuale",
	"f.iut": "IUT (codice identificativo) o UserID", "f.erc": "Codice di emergenza (ERC)", "f.action": "Cosa vuoi fare?",
	"f.givenName": "Nome", "f.surname": "Cognome", "f.fiscalCode": "Codice fiscale", "f.birthDate": "Data di nascita",
	"f.phone": "Numero di cellulare", "f.method": "Modalità di identificazione", "f.docType": "Tipo di documento", "f.docNumber": "Numero del documento",
	"f.docCountry": "Paese di rilascio", "f.docExpiry": "Data di scadenza del documento",
	"f.acceptContract": "Ho letto e accetto il contratto per il servizio di firma qualificata.",
	"f.acceptPrivacy":  "Ho letto l'informativa privacy e accetto il trattamento per l'emissione del certificato.",
	"f.passphrase":     "Passphrase della busta", "f.passphraseConfirm": "Ripeti la passphrase", "f.otp_sign": "Codice ricevuto via SMS (firma il contratto)",

	"help.password":   "Scegli una password che rispetti tutte le regole qui sotto.",
	"help.login":      "L'indirizzo e-mail con cui ti sei registrato o lo UserID ricevuto da un operatore.",
	"help.pin":        "8 cifre. Lo digiterai per ogni firma; nessun altro lo conosce.",
	"help.puk":        "8 cifre, stampato nella tua busta.",
	"help.phone":      "Formato internazionale, ad es. +393331234567.",
	"help.iut":        "Stampato nella busta (10 caratteri). Va bene anche lo UserID.",
	"help.erc":        "Stampato nella busta (12 caratteri).",
	"help.fiscalCode": "16 caratteri, come sulla tessera sanitaria.",
	"help.date":       "Formato AAAA-MM-GG.",
	"help.passphrase": "Servirà per aprire la busta PDF con PUK e codice di emergenza. Non la conserviamo.",

	"register.lead": "Crea un account per richiedere il certificato di firma remota.", "register.consents": "Consensi",
	"register.submit": "Crea account", "register.have_account": "Ho già un account",
	"registered.sent": "Abbiamo inviato un link di conferma a %s. Aprilo per attivare l'account.",
	"title.resend":    "Nuovo link di conferma", "resend.lead": "Ti sei registrato ma non hai confermato l'indirizzo e-mail, o il link è scaduto? Inserisci l'indirizzo: ti inviamo un nuovo link e il precedente non vale più.",
	"resend.submit": "Invia un nuovo link", "resend.link": "Ricevi un nuovo link di conferma",
	"flash.resent": "Se l'indirizzo appartiene a un account non ancora confermato, un nuovo link è in arrivo. Controlla la posta.",
	"verify.again": "Il link potrebbe essere scaduto o sostituito da uno più recente.", "login.unconfirmed": "Non hai ricevuto l'e-mail di conferma?",
	"registered.next": "Conserva lo UserID: puoi usarlo, o l'indirizzo e-mail, per accedere.",
	"login.submit":    "Accedi", "login.lost": "Hai perso il telefono o la busta?",
	"password.forced": "La password è provvisoria o scaduta: scegline una nuova per continuare.", "password.submit": "Cambia password",

	"home.hello": "Ciao", "home.request": "La tua richiesta di certificato", "home.request_open": "Apri la richiesta",
	"home.no_cert": "Non hai ancora un certificato", "home.no_cert_help": "Richiedi un certificato di firma qualificata: bastano pochi minuti più la verifica dell'identificazione.",
	"home.request_new": "Richiedi un certificato", "home.certificate": "Certificato di firma", "home.subject": "Titolare", "home.holder_id": "Identificativo del titolare",
	"home.serial": "Numero di serie", "home.issuer": "Emesso da", "home.valid_to": "Valido fino al", "home.days_left": "mancano %d giorni",
	"home.otp": "OTP", "home.sig_week": "firme negli ultimi 7 giorni", "home.sig_total": "firme in totale", "home.tasks": "Cosa puoi fare",

	"status.valid": "Valido", "status.suspended": "Sospeso", "status.revoked": "Revocato", "status.expired": "Scaduto",
	"status.pin_blocked": "PIN bloccato", "status.not_activated": "Non attivato",
	"otp.type.sms": "SMS al cellulare", "otp.type.totp": "App di autenticazione", "otp.type.none": "Nessuno",
	"otp.sms_help": "Prima chiedi un codice: te lo inviamo via SMS.", "otp.totp_help": "Usa il codice mostrato dalla tua app di autenticazione.",
	"otp.send": "Inviami un codice", "otp.lead": "Verifica che i codici monouso funzionino o cambia il cellulare a cui arrivano.",
	"otp.test": "Prova l'OTP", "otp.test_submit": "Verifica il codice", "otp.phone": "Cambia numero di cellulare",
	"otp.phone_help": "Chiedi un codice (arriva al numero attuale), poi scrivi il nuovo numero e il codice.", "otp.phone_submit": "Cambia numero",

	"pin.lead": "Per cambiare il PIN servono il PIN attuale e un codice monouso.", "pin.submit": "Cambia PIN", "pin.forgot": "PIN bloccato o dimenticato?",
	"unblock.lead": "Il PIN si blocca dopo 3 tentativi errati. Usa il PUK della busta per sceglierne uno nuovo.", "unblock.submit": "Sblocca e imposta il nuovo PIN",
	"activate.lead":   "Il certificato è emesso ma non ancora attivo. Usa il PUK della busta e un codice monouso per scegliere il PIN.",
	"activate.submit": "Attiva", "reactivate.lead": "Il certificato è sospeso. Conferma con PIN e codice monouso per renderlo di nuovo valido.",
	"reactivate.submit": "Riattiva", "renew.lead": "Il rinnovo emette un nuovo certificato per la tua chiave; quello attuale viene sostituito.",
	"renew.submit": "Rinnova", "suspend.lead": "Finché è sospeso nessuno può firmare con il certificato. Potrai riattivarlo con PIN e OTP.",
	"suspend.confirm": "Voglio sospendere ora il mio certificato.", "suspend.submit": "Sospendi",
	"revoke.lead":   "La revoca è definitiva: il certificato non potrà più essere usato e ne servirà uno nuovo.",
	"revoke.second": "Seconda conferma: l'operazione non si può annullare.", "revoke.type_word": "Scrivi REVOCA per confermare",
	"revoke.word": "REVOCA", "revoke.submit_final": "Revoca definitivamente", "revoke.understand": "Ho capito che la revoca è definitiva.",
	"revoke.submit": "Continua",

	"history.when": "Quando", "history.action": "Operazione", "history.count": "Firme", "history.outcome": "Esito",
	"history.authorize": "Autorizzazione", "history.sign": "Firma", "history.extend": "Estensione", "history.ok": "Riuscita",
	"history.empty": "Ancora nessuna firma.", "history.newer": "Più recenti", "history.older": "Meno recenti",

	"emergency.lead":    "Hai perso il telefono o la busta? Con i codici della busta puoi bloccare subito il certificato, senza accedere.",
	"emergency.suspend": "Sospendi (potrai riattivarlo)", "emergency.revoke": "Revoca (definitiva)",
	"emergency.understand": "Se ho scelto la revoca, ho capito che è definitiva.", "emergency.submit": "Conferma",

	"request.lead":   "Compila i dati del titolare e le evidenze di identificazione. Un operatore le verifica prima dell'emissione.",
	"request.holder": "Titolare", "request.identification": "Identificazione",
	"request.identification_help": "Come sei stato identificato e il documento che hai mostrato.",
	"request.submit":              "Invia la richiesta", "request.status.pending": "Un operatore sta verificando la tua identificazione.",
	"request.status.approved": "L'identificazione è stata approvata: firma il contratto per ottenere il certificato.",
	"request.status.rejected": "L'identificazione è stata respinta.", "request.status.issued": "Il certificato è stato emesso.",
	"request.status.issuing": "Il certificato è in emissione.",
	"request.pending_help":   "Di solito bastano pochi minuti. Ricarica la pagina per controllare.", "request.refresh": "Controlla di nuovo",
	"request.approved": "L'identificazione è stata approvata.", "request.otp_help": "La firma del contratto si conferma con un codice inviato via SMS al cellulare indicato.",
	"request.acceptances": "Contratto", "request.pin": "Scegli il PIN", "request.envelope": "Passphrase della busta",
	"request.sign": "Firma il contratto ed emetti il certificato", "request.rejected": "La richiesta precedente è stata respinta:",

	"contract.title": "Contratto per il servizio di firma remota qualificata",
	"contract.text":  "Il prestatore rilascia al titolare un certificato qualificato e custodisce la chiave di firma in un dispositivo certificato (HSM). Il titolare mantiene segreti PIN, PUK e codice di emergenza, usa il certificato solo personalmente e lo sospende o revoca subito in caso di smarrimento del dispositivo o dei codici. Il certificato vale tre anni salvo sospensione o revoca.",
	"privacy.title":  "Informativa privacy",
	"privacy.text":   "I dati personali sono trattati dal prestatore per identificare il titolare ed emettere e gestire il certificato (Regolamento (UE) 2016/679 ed eIDAS). Le evidenze di identificazione sono conservate per 20 anni come previsto dalla legge. Il titolare può esercitare i diritti di accesso, rettifica e opposizione contattando il prestatore.",

	"method.edoc-nfc": "Documento elettronico letto via NFC", "method.video-operator": "Videochiamata con operatore",
	"method.video-self": "Video registrato in autonomia", "method.cie": "CIE (carta d'identità elettronica)",
	"doc.identity-card": "Carta d'identità", "doc.passport": "Passaporto", "doc.driving-licence": "Patente di guida",
	"rule.all_ok": "La password rispetta tutte le regole.", "rule.some_bad": "La password non rispetta ancora tutte le regole.",
	"history.caption": "Certificato",
	"totp.title":      "App di autenticazione", "totp.help": "Usa i codici di un'app di autenticazione (TOTP) invece degli SMS: funziona anche senza campo.",
	"totp.start": "Configura un'app di autenticazione", "totp.scan": "Inquadra questo codice QR con l'app di autenticazione, poi scrivi il codice che mostra.",
	"totp.qr_alt": "Codice QR per aggiungere sigillo all'app di autenticazione", "totp.manual": "Oppure inserisci a mano questa chiave:",
	"totp.submit": "Conferma e passa all'app", "f.code_new": "Codice mostrato dall'app", "f.otp_current": "Codice monouso attuale",
	"help.otp_current":    "Il codice che usi oggi (chiedi un SMS qui sopra o leggi l'app attuale).",
	"flash.totp_enrolled": "I codici monouso ora arrivano dall'app di autenticazione.",
	"err.invalid_new_otp": "Il codice dell'app è errato: controlla l'orologio dell'app e prova il codice successivo.",

	// Domain messages (sam, enroll, ca) shown to the holder.
	"msg.Invalid username or password":                                         "Nome utente o password errati",
	"msg.The PIN is invalid":                                                   "Il PIN è errato",
	"msg.PIN locked":                                                           "Il PIN è bloccato dopo troppi tentativi errati: sbloccalo con il PUK della busta.",
	"msg.The OTP is invalid":                                                   "Il codice OTP è errato o scaduto",
	"msg.The PUK is invalid":                                                   "Il PUK è errato",
	"msg.The PUK is blocked: the credential must be reissued":                  "Il PUK è bloccato: il certificato va riemesso",
	"msg.Invalid identifying code or emergency code":                           "Codice identificativo o codice di emergenza errati",
	"msg.Too many attempts: retry later":                                       "Troppi tentativi: riprova più tardi",
	"msg.The new PIN must differ from the current one":                         "Il nuovo PIN deve essere diverso da quello attuale",
	"msg.The new password must differ from the old one":                        "La nuova password deve essere diversa da quella attuale",
	"msg.This verification link is not valid or has expired":                   "Il link di verifica non è valido o è scaduto",
	"msg.Confirm your e-mail address first: open the link we sent you":         "Conferma prima l'indirizzo e-mail: apri il link che ti abbiamo inviato",
	"msg.You already have a certificate request in progress":                   "Hai già una richiesta di certificato in corso",
	"msg.There is no approved certificate request to sign":                     "Non c'è una richiesta approvata da firmare",
	"msg.The credential is not activated":                                      "Il certificato non è attivato",
	"msg.The credential is already activated":                                  "Il certificato è già attivo",
	"msg.OTP locked: too many codes requested":                                 "Troppi codici richiesti: riprova più tardi",
	"msg.Too many codes requested: retry later":                                "Troppi codici richiesti: riprova più tardi",
	"msg.The user is disabled":                                                 "L'utente è disabilitato",
	"msg.The service is temporarily unavailable":                               "Il servizio è momentaneamente non disponibile",
	"msg.The credential has no online OTP":                                     "Il certificato non usa OTP via SMS",
	"msg.Password does not meet the policy: " + sam.RuleLength:                 "La password non rispetta le regole",
	"msg.The certificate authority is temporarily unavailable":                 "L'autorità di certificazione è momentaneamente non disponibile",
	"msg.Only holders registered in the portal can request a certificate here": "Solo chi si è registrato nel portale può richiedere qui un certificato",
}

func init() {
	// The password rules come from sam, the error keys from enroll: their
	// English texts are the source, so they can never drift apart.
	for _, r := range []string{sam.RuleLength, sam.RuleUpper, sam.RuleLower, sam.RuleDigit, sam.RuleSpecial, sam.RuleRepeated} {
		en["rule."+r] = strings.ToUpper(r[:1]) + r[1:]
	}
	it["rule."+sam.RuleLength] = "almeno 8 caratteri"
	it["rule."+sam.RuleUpper] = "almeno una lettera maiuscola"
	it["rule."+sam.RuleLower] = "almeno una lettera minuscola"
	it["rule."+sam.RuleDigit] = "almeno una cifra"
	it["rule."+sam.RuleSpecial] = "almeno un carattere speciale"
	it["rule."+sam.RuleRepeated] = "non più di due caratteri uguali di seguito"
	for _, c := range enroll.Countries {
		if _, ok := countryNames[c]; ok {
			en["country."+c] = countryNames[c][0]
			it["country."+c] = countryNames[c][1]
		}
	}
}

var countryNames = map[string][2]string{
	"AT": {"Austria", "Austria"}, "BE": {"Belgium", "Belgio"}, "BG": {"Bulgaria", "Bulgaria"}, "CH": {"Switzerland", "Svizzera"},
	"CY": {"Cyprus", "Cipro"}, "CZ": {"Czechia", "Cechia"}, "DE": {"Germany", "Germania"}, "DK": {"Denmark", "Danimarca"},
	"EE": {"Estonia", "Estonia"}, "ES": {"Spain", "Spagna"}, "FI": {"Finland", "Finlandia"}, "FR": {"France", "Francia"},
	"GB": {"United Kingdom", "Regno Unito"}, "GR": {"Greece", "Grecia"}, "HR": {"Croatia", "Croazia"}, "HU": {"Hungary", "Ungheria"},
	"IE": {"Ireland", "Irlanda"}, "IS": {"Iceland", "Islanda"}, "IT": {"Italy", "Italia"}, "LI": {"Liechtenstein", "Liechtenstein"},
	"LT": {"Lithuania", "Lituania"}, "LU": {"Luxembourg", "Lussemburgo"}, "LV": {"Latvia", "Lettonia"}, "MT": {"Malta", "Malta"},
	"NL": {"Netherlands", "Paesi Bassi"}, "NO": {"Norway", "Norvegia"}, "PL": {"Poland", "Polonia"}, "PT": {"Portugal", "Portogallo"},
	"RO": {"Romania", "Romania"}, "SE": {"Sweden", "Svezia"}, "SI": {"Slovenia", "Slovenia"}, "SK": {"Slovakia", "Slovacchia"},
	"SM": {"San Marino", "San Marino"}, "US": {"United States", "Stati Uniti"}, "VA": {"Vatican City", "Città del Vaticano"},
}
