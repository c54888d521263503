package matrix

// LoopbackRedirectURI is the redirect URI registered for the authorization
// code grant: loopback, without a port, as RFC 8252 section 7.3 and the
// Matrix spec ask; the flow uses it with the listener's port.
const LoopbackRedirectURI = "http://127.0.0.1/callback"
