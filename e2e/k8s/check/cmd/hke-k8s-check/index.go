package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The index format, written by hke's Rust tests:
//
//	{"items": [
//	  {"kind": "kubeadm-config",    "name": "...", "path": "/abs/kubeadm.yaml"},
//	  {"kind": "containerd-config", "name": "...", "path": "/abs/config.toml", "os": "linux"|"windows"},
//	  {"kind": "platform",          "name": "...", "value": "windows(10.0.20348)/amd64"},
//	  {"kind": "cni",               "name": "...", "path": "/abs/dir/10-flannel.conflist"},
//	  {"kind": "flannel-netconf",   "name": "...", "path": "/abs/net-conf.json"},
//	  {"kind": "kubelet-flags",     "name": "...", "os": "linux"|"windows", "args": ["--foo=bar"]},
//	  {"kind": "kubelet-config",    "name": "...", "path": "/abs/config.yaml"},
//	  {"kind": "kube-proxy-config", "name": "...", "path": "/abs/kube-proxy.yaml"},
//	  {"kind": "kube-proxy-flags",  "name": "...", "os": "linux"|"windows", "args": ["--foo=bar"]}
//	]}
//
// "os" is accepted on every kind and defaults to "linux"; it changes the check
// for containerd-config (default runtime), flannel-netconf (Windows vxlan
// rules), kubelet-*, and kube-proxy-* (Windows-only flags, proxy mode, OS
// specific validation). A relative "path" is taken relative to the directory
// of INDEX.json. Unknown keys, unknown kinds and missing required fields make
// the whole index bad (exit 2).

const (
	KindKubeadmConfig    = "kubeadm-config"
	KindContainerdConfig = "containerd-config"
	KindPlatform         = "platform"
	KindCNI              = "cni"
	KindFlannelNetConf   = "flannel-netconf"
	KindKubeletFlags     = "kubelet-flags"
	KindKubeletConfig    = "kubelet-config"
	KindKubeProxyConfig  = "kube-proxy-config"
	KindKubeProxyFlags   = "kube-proxy-flags"
)

// Index is the whole INDEX.json document.
type Index struct {
	Items []Item `json:"items"`
}

// Item is one thing to check.
type Item struct {
	Kind  string   `json:"kind"`
	Name  string   `json:"name"`
	Path  string   `json:"path,omitempty"`
	OS    string   `json:"os,omitempty"`
	Value string   `json:"value,omitempty"`
	Args  []string `json:"args,omitempty"`
}

// what each kind needs besides kind and name
type need int

const (
	needPath need = iota
	needValue
	needArgs
)

var kinds = map[string]need{
	KindKubeadmConfig:    needPath,
	KindContainerdConfig: needPath,
	KindPlatform:         needValue,
	KindCNI:              needPath,
	KindFlannelNetConf:   needPath,
	KindKubeletFlags:     needArgs,
	KindKubeletConfig:    needPath,
	KindKubeProxyConfig:  needPath,
	KindKubeProxyFlags:   needArgs,
}

func loadIndex(path string) (*Index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseIndex(data, filepath.Dir(path))
}

func parseIndex(data []byte, baseDir string) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var idx Index
	if err := dec.Decode(&idx); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the index object")
	}
	if idx.Items == nil {
		return nil, errors.New(`no "items" list`)
	}
	for i := range idx.Items {
		it := &idx.Items[i]
		where := fmt.Sprintf("items[%d]", i)
		n, ok := kinds[it.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: unknown kind %q", where, it.Kind)
		}
		if it.Name == "" {
			return nil, fmt.Errorf("%s: empty name", where)
		}
		switch it.OS {
		case "":
			it.OS = "linux"
		case "linux", "windows":
		default:
			return nil, fmt.Errorf("%s (%s): os must be linux or windows, not %q", where, it.Name, it.OS)
		}
		switch n {
		case needPath:
			if it.Path == "" {
				return nil, fmt.Errorf("%s (%s): kind %s needs a path", where, it.Name, it.Kind)
			}
			if !filepath.IsAbs(it.Path) {
				it.Path = filepath.Join(baseDir, it.Path)
			}
		case needValue:
			if it.Value == "" {
				return nil, fmt.Errorf("%s (%s): kind %s needs a value", where, it.Name, it.Kind)
			}
		case needArgs:
			if it.Args == nil {
				return nil, fmt.Errorf("%s (%s): kind %s needs args (may be empty: [])", where, it.Name, it.Kind)
			}
		}
	}
	return &idx, nil
}
