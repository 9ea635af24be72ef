package csc

import (
	"crypto"
	"encoding/base64"
	"strings"
)

// seedBodies are the committed fuzz seeds: well-formed requests of every
// method and the malformed inputs of the decoder tables, so that the
// corpus replay exercises both the success and the refusal paths.
func seedBodies() [][]byte {
	url := base64.RawURLEncoding.EncodeToString(d256[:])
	pssMGF := base64.StdEncoding.EncodeToString(pssParamsDER(crypto.SHA256, 32, crypto.SHA512))
	list := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"a":1}{}`, `{"credentialID":`, `credentialID=cred-ec&SAD=s`, `<xml/>`,
		`{"credentialID":"cred-ec"}`, `{"credentialID":5}`, `{"credentialID":""}`, `{"credentialID":null}`,
		// signHash
		`{"credentialID":"cred-ec","SAD":"sad-cred-ec","hashes":["` + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-ec","SAD":"sad-cred-ec","hash":["` + url + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-rsa","SAD":"sad-cred-rsa","hashes":["` + b384 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.2","signAlgo":"1.2.840.113549.1.1.1"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hash":["` + b384 + `"],"hashAlgo":"2.16.840.1.101.3.4.2.2","signAlgo":"1.2.840.113549.1.1.1"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + pssGood + `"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","sign_algo_params":"` + pssGood + `"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + pssMGF + `"}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"MAA="}`,
		`{"credentialID":"cred-rsa","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"%%%"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["` + b384 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["!!!"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":[],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":[1,null,{}],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.3"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2","operationMode":"A"}`,
		`{"credentialID":"cred-ec","SAD":"s","hashes":["` + strings.Repeat(b256+`","`, 20) + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		`{"credentialID":"nobody","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
		// authorize / extendTransaction
		`{"credentialID":"cred-ec","numSignatures":"2","hashes":["` + b256 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","authData":[{"id":"PIN","value":"12345678"}]}`,
		`{"credentialID":"cred-ec","numSignatures":1,"hash":["` + b256 + `"],"PIN":"12345678","OTP":"123456"}`,
		`{"credentialID":"cred-ec","numSignatures":"abc"}`, `{"credentialID":"cred-ec","numSignatures":0}`,
		`{"credentialID":"cred-ec","numSignatures":-1}`, `{"credentialID":"cred-ec","numSignatures":1e99}`,
		`{"credentialID":"cred-ec","numSignatures":1,"authData":"x"}`,
		`{"credentialID":"cred-ec","numSignatures":1,"authData":[{"id":"X"}]}`,
		`{"credentialID":"cred-ec","numSignatures":1,"authData":[{"id":"PIN","value":1}]}`,
		`{"credentialID":"cred-ec","numSignatures":1,"description":"` + strings.Repeat("d", 600) + `"}`,
		`{"credentialID":"cred-ec","SAD":"sad-cred-ec","hashes":["` + b256 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1"}`,
		`{"credentialID":"cred-ec","SAD":"sad-cred-ec","hash":["` + b512() + `"]}`,
		// list / info / challenge / login / revoke / timestamp
		`{"credentialInfo":true,"certificates":"chain","certInfo":true,"authInfo":true,"onlyValid":true}`,
		`{"userID":"bob"}`, `{"certificates":"all"}`, `{"maxResults":1}`, `{"maxResults":"x"}`, `{"pageToken":"@@"}`,
		`{"credentialID":"cred-rsa","certificates":"none","certInfo":true,"authInfo":true}`,
		`{"credentialID":"cred-rsa","authObjectID":"OTP"}`, `{"credentialID":"cred-rsa","authObjectID":"PIN"}`,
		`{"rememberMe":true}`, `{"rememberMe":"maybe"}`, `{"refresh_token":"refresh"}`, `{"refresh_token":7}`,
		`{"token":"t","token_type_hint":"refresh_token"}`, `{"token":"t","token_type_hint":"id_token"}`,
		`{"hash":"` + b256 + `","hashAlgo":"2.16.840.1.101.3.4.2.1"}`,
		`{"hash":"` + b256 + `","hashAlgo":"2.16.840.1.101.3.4.2.1","nonce":"zz"}`,
		`{"hash":"","hashAlgo":"2.16.840.1.101.3.4.2.1"}`,
		`{"lang":"en-US","clientData":"x"}`, `{"clientData":{}}`,
	}
	out := make([][]byte, len(list))
	for i, s := range list {
		out[i] = []byte(s)
	}
	return out
}

func b512() string { return base64.StdEncoding.EncodeToString(d512[:]) }
