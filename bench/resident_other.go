//go:build !linux

package main

// residentShare is only known on Linux (mincore).
func residentShare(string) string { return "an unknown share (only measured on Linux)" }
