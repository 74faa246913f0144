package peertest_test

import "net/http"

// routeOnly serves h at path and nothing else.
func routeOnly(path string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return mux
}
