package hsm

// LockLibrary blocks every PKCS#11 call this package makes on module until
// the returned func is called. Tests use it to play another user of the
// library in the same process who finalises it or closes all sessions: that
// is only defined behaviour (PKCS#11 §5.4, and SoftHSM crashes otherwise)
// when no other thread is inside the library at that moment.
func LockLibrary(module string) (unlock func()) {
	m, err := moduleFor(module)
	if err != nil {
		panic(err)
	}
	m.lib.Lock()
	return m.lib.Unlock
}
