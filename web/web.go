// Package web holds Ponte's server-rendered pages and their stylesheet,
// embedded in the binary.
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Templates parses every page template.
func Templates() *template.Template {
	return template.Must(template.New("").ParseFS(templates, "templates/*.html"))
}

// Static serves the embedded stylesheet and assets under /static/.
func Static() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

// StaticFile reports whether name (a path under /static/, without the
// prefix) is one of the embedded files, not a directory.
func StaticFile(name string) bool {
	fi, err := fs.Stat(static, path.Join("static", name))
	return err == nil && !fi.IsDir()
}
