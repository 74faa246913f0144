package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// web is the /admin page: HTML, CSS and a little JavaScript, no build step
// and nothing fetched from elsewhere. It holds no data: the page asks the
// admin API, with the token the operator signs in with.
//
//go:embed web
var web embed.FS

// pageHandler serves /admin and its two assets.
func pageHandler() http.Handler {
	files, _ := fs.Sub(web, "web")
	static := http.StripPrefix("/admin/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Nothing from another origin, no inline script, no framing.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Path == "/admin" || r.URL.Path == "/admin/" {
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		static.ServeHTTP(w, r)
	})
}
