package oauth

import (
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"
)

// The pages speak English or Italian: the CSC lang parameter of the
// request decides ("it", "it-IT"), else the browser's first
// Accept-Language. Texts are keyed by their English wording, so a text
// missing here shows in English; TestItalianCoversEveryText checks that
// none is missing.
var it = map[string]string{
	// layout and login
	"Secure sign-in":                                   "Accesso sicuro",
	"sigillo · remote signing service":                 "sigillo · servizio di firma remota",
	"asks to create signatures with your certificate.": "chiede di creare firme con il tuo certificato.",
	"asks to access your signing account.":             "chiede di accedere al tuo account di firma.",
	"Username":                                         "Nome utente",
	"Password":                                         "Password",
	"Sign in":                                          "Accedi",
	"You sign in on sigillo's own page: the application never sees your password, PIN or one-time code.": "Accedi su una pagina di sigillo: l'applicazione non vede mai la tua password, il PIN o il codice monouso.",

	// consent
	"Authorize":          "Autorizza",
	"What you authorize": "Cosa autorizzi",
	"Certificate":        "Certificato",
	"Credential":         "Credenziale",
	"Signatures":         "Firme",
	"Description":        "Descrizione",
	"Documents (%d)":     "Documenti (%d)",
	"Only these documents can be signed: the application sent their %s digests.":                                      "Si possono firmare solo questi documenti: l'applicazione ne ha inviato le impronte %s.",
	"The application did not say which documents it will sign: it may sign any %d document in the next few minutes.":  "L'applicazione non ha indicato quali documenti firmerà: potrà firmare %d documento qualsiasi nei prossimi minuti.",
	"The application did not say which documents it will sign: it may sign any %d documents in the next few minutes.": "L'applicazione non ha indicato quali documenti firmerà: potrà firmare %d documenti qualsiasi nei prossimi minuti.",
	"Your one-time code comes by SMS.": "Il codice monouso ti arriva via SMS.",
	"Send me a code":                   "Inviami un codice",
	"PIN":                              "PIN",
	"One-time code":                    "Codice monouso",
	"The 6-digit code shown by your authenticator app.": "Il codice di 6 cifre mostrato dalla tua app di autenticazione.",
	"The code we sent you by SMS.":                      "Il codice che ti abbiamo inviato via SMS.",
	"Authorize %d signature":                            "Autorizza %d firma",
	"Authorize %d signatures":                           "Autorizza %d firme",
	"Deny":                                              "Rifiuta",
	"Allow":                                             "Consenti",
	"The application will be able to list your certificates and ask you to authorize signatures. It cannot sign without your PIN and one-time code.": "L'applicazione potrà elencare i tuoi certificati e chiederti di autorizzare firme. Non può firmare senza il tuo PIN e il codice monouso.",
	"We sent a one-time code by SMS to your phone.": "Ti abbiamo inviato un codice monouso via SMS.",

	// error pages
	"Authorization failed": "Autorizzazione non riuscita",
	"The application sent a request that cannot be completed here. Close this page and start again from the application.": "L'applicazione ha inviato una richiesta che non si può completare qui. Chiudi questa pagina e ricomincia dall'applicazione.",
	"Malformed request":                    "Richiesta non valida",
	"No one-time code is needed here.":     "Qui non serve un codice monouso.",
	"The client's redirect URI is invalid": "L'indirizzo di ritorno dell'applicazione non è valido",
	"This request was already completed.":  "Questa richiesta è già stata completata.",
	"This sign-in page expired or was already used. Start again from the application.":   "Questa pagina di accesso è scaduta o è già stata usata. Ricomincia dall'applicazione.",
	"This sign-in page is not valid. Start again from the application.":                  "Questa pagina di accesso non è valida. Ricomincia dall'applicazione.",
	"Sign in first. Start again from the application.":                                   "Prima accedi. Ricomincia dall'applicazione.",
	"This request did not come from the sign-in page. Start again from the application.": "Questa richiesta non viene dalla pagina di accesso. Ricomincia dall'applicazione.",
	"Too many attempts: retry later":                                                     "Troppi tentativi: riprova più tardi",
	"The code could not be sent":                                                         "Non è stato possibile inviare il codice",
	"Internal error":                                                                     "Errore interno",
	"The service is temporarily unavailable":                                             "Il servizio è temporaneamente non disponibile",
	"Missing parameter client_id":                                                        "Manca il parametro client_id",
	"Unknown client_id":                                                                  "client_id sconosciuto",
	"client_id does not match the authenticated client":                                  "client_id non corrisponde al client autenticato",
	"redirect_uri is not registered for this client":                                     "redirect_uri non è registrato per questo client",
	"Missing parameter redirect_uri":                                                     "Manca il parametro redirect_uri",
	"state is too long":                                                                  "state è troppo lungo",
	"Invalid or expired request_uri":                                                     "request_uri non valido o scaduto",

	// sam's refusals shown on the login and consent pages
	"Invalid username or password":                                "Nome utente o password errati",
	"Password change required: change it in the self-care portal": "Devi cambiare la password: cambiala nel portale self-care",
	"The user is disabled":                                        "L'utente è disabilitato",
	"The PIN is invalid":                                          "Il PIN è errato",
	"The OTP is invalid":                                          "Il codice monouso è errato o scaduto",
	"PIN locked":                                                  "PIN bloccato: sbloccalo con il PUK nel portale self-care",
	"OTP locked":                                                  "Codice monouso bloccato: chiedine uno nuovo",
	"The credential identified by credentialID is disabled": "La credenziale è disabilitata",
	"The credential is not activated":                       "La credenziale non è ancora attivata",
	"Signing certificate is expired":                        "Il certificato di firma è scaduto",
	"Signing certificate is revoked":                        "Il certificato di firma è revocato",
	"Signing certificate is suspended":                      "Il certificato di firma è sospeso",
	"Signing certificate is not valid":                      "Il certificato di firma non è valido",
	"Numbers of signatures is too high":                     "Il numero di firme è troppo alto",
	"The credential has no online OTP":                      "La credenziale non usa codici via SMS",
}

// langOf maps a language tag or an Accept-Language value to "it" or "en".
func langOf(tag string) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(tag)), "it") {
		return "it"
	}
	return "en"
}

// lang picks the page language: the request's lang, else the browser's.
func lang(c *gin.Context, r *authRequest) string {
	if r != nil && r.Lang != "" {
		return langOf(r.Lang)
	}
	return langOf(c.GetHeader("Accept-Language"))
}

// T translates an English text into the page's language.
func (v *view) T(s string) string {
	if v.Lang == "it" {
		if t, ok := it[s]; ok {
			return t
		}
	}
	return s
}

// Tf translates a format and fills it in.
func (v *view) Tf(format string, args ...any) string { return fmt.Sprintf(v.T(format), args...) }

// Tn is Tf with the singular or plural format chosen by n.
func (v *view) Tn(one, many string, n int) string {
	if n == 1 {
		return v.Tf(one, n)
	}
	return v.Tf(many, n)
}
