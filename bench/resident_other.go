//go:build !linux

package main

// residentShare is only known on Linux (mincore).
func residentShare(string) string { return "an unknown share (only measured on Linux)" }

// diskReads is only known on Linux (/proc/self/io).
func diskReads() int64 { return -1 }
