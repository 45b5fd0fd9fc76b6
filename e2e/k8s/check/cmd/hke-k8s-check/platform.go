package main

import "github.com/containerd/platforms"

// checkPlatform parses a platform specifier with containerd's
// github.com/containerd/platforms Parse (the version containerd v2.2 pins,
// which accepts an OS version as "os(version)/arch").
func checkPlatform(value string) error {
	_, err := platforms.Parse(value)
	return err
}
