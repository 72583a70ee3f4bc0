// Package docs holds Ponte's documentation (the Markdown files beside this
// one). It has no code: its test runs every example the documents mark as
// runnable against a real `ponte serve`, so the examples cannot go stale.
package docs
