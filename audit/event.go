package audit

import "github.com/sigillo/sigillo/store"

// Event is one security-relevant happening, as the core reports it.
// Consumers declare `Record(ctx, audit.Event) error` in their own
// interfaces; a failed Record must stop the action it describes when that
// action is a signature (fail closed).
type Event struct {
	// Actor is who acted: "user:<id>", "admin", "client:<id>", "system", "ip:<addr>".
	Actor string
	// Action is what happened, dotted: "auth.login", "credential.authorize",
	// "signature.sign", "pin.blocked", "cert.revoked", "admin.user.create"...
	Action string
	// Object is what it happened to: "credential:<id>", "cert:<serial>", "user:<id>".
	Object string
	// Outcome is "success" or "failure:<reason>".
	Outcome string
	// Detail holds small non-secret facts (hash algorithm, count, reason).
	Detail map[string]string
	// With are rows committed in the same transaction as this record (the
	// history and signature log of a signing call): they exist if and
	// only if the record does. Not part of the record or its hash.
	With store.AuditExtras
}
