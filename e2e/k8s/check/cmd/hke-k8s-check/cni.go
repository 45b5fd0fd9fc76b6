package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	gocni "github.com/containerd/go-cni"
	"github.com/containernetworking/cni/libcni"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

// checkCNI loads one CNI network config file the way containerd's CRI plugin
// does: go-cni (the version containerd v2.2 pins) loadFromConfDir, reached
// through gocni.New(WithPluginConfDir).Load(WithAllConf) on a scratch directory
// that holds only this file under its own name. That loader lists *.conf,
// *.conflist and *.json; a ".conflist" goes through libcni.ConfListFromFile,
// anything else through libcni.ConfFromFile, must have a "type" (so a
// conflist saved as .conf fails), and is wrapped with ConfListFromConf.
//
// Then the structure libcni's ValidateNetworkList relies on, short of
// executing plugins (which is all ValidateNetworkList itself does): the list
// has a name, its cniVersion (libcni's default "0.1.0" when absent, as in
// libcni validatePlugin) is a version libcni supports
// (pkg/version.All), and every plugin has a type.
func checkCNI(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hke-cni-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), data, 0o600); err != nil {
		return err
	}

	c, err := gocni.New(gocni.WithPluginConfDir(dir), gocni.WithPluginDir([]string{dir}))
	if err != nil {
		return err
	}
	if err := c.Load(gocni.WithAllConf); err != nil {
		// Report the real location, not the scratch directory.
		return errors.New(strings.ReplaceAll(err.Error(), dir, filepath.Dir(path)))
	}

	var list *libcni.NetworkConfigList
	if strings.HasSuffix(path, ".conflist") {
		list, err = libcni.ConfListFromFile(path)
	} else {
		var conf *libcni.NetworkConfig
		if conf, err = libcni.ConfFromFile(path); err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return err
	}
	if list.Name == "" {
		return errors.New("network configuration has no name")
	}
	v := list.CNIVersion
	if v == "" {
		v = "0.1.0"
	}
	if supported := cniversion.All.SupportedVersions(); !slices.Contains(supported, v) {
		return fmt.Errorf("cniVersion %q is not supported by libcni (supported: %s)", v, strings.Join(supported, ", "))
	}
	if len(list.Plugins) == 0 {
		return errors.New("no plugins in network configuration")
	}
	for i, p := range list.Plugins {
		if p.Network == nil || p.Network.Type == "" {
			return fmt.Errorf("plugin %d has no type", i)
		}
	}
	return nil
}
