//go:build !unix

package main

import "io/fs"

// looseMode reports false: outside Unix, file modes do not say who may read
// a file, and the user's cache directory is private by default.
func looseMode(fs.FileInfo) bool { return false }
