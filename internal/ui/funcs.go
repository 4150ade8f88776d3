package ui

import (
	"html/template"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"short": func(s string) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"until":  until,
	"join":   strings.Join,
	"status": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"add":    func(a, b int) int { return a + b },
	"sub":    func(a, b int) int { return a - b },
	"rowsWith": func(rows []requestRow, csrf string) any {
		return struct {
			Rows []requestRow
			CSRF string
		}{rows, csrf}
	},
}
