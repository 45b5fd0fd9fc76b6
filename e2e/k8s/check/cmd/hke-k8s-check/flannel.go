package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/backend/vxlan"
	"github.com/flannel-io/flannel/pkg/subnet"

	// Backends register themselves with backend.Register in init. These are
	// the Linux backends that build without cgo; flannel's "udp" needs cgo
	// on amd64 (pkg/backend/udp/cproxy_amd64.go) and "tencent-vpc" pulls in
	// a cloud SDK, so those two are reported as not compiled in.
	_ "github.com/flannel-io/flannel/pkg/backend/alloc"
	_ "github.com/flannel-io/flannel/pkg/backend/extension"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw"
	_ "github.com/flannel-io/flannel/pkg/backend/ipip"
	_ "github.com/flannel-io/flannel/pkg/backend/ipsec"
	_ "github.com/flannel-io/flannel/pkg/backend/wireguard"
)

// Windows VXLAN rules from flannel pkg/backend/vxlan/vxlan_windows.go
// (//go:build windows, so not linkable here): defaultVNI and vxlanPort.
const (
	windowsVXLANMinVNI = 4096
	windowsVXLANPort   = 4789
)

// checkFlannelNetConf parses a flannel net-conf.json with flannel's own
// parser and the checks flanneld applies before touching the host:
//
//   - subnet.ParseConfig (pkg/subnet/config.go), what the kube subnet manager
//     calls on the file;
//   - subnet.CheckNetworkConfig, the coherence checks (Network present,
//     SubnetLen/SubnetMin/SubnetMax, IPv6 counterparts);
//   - the backend type must be registered: backend.NewManager(...).
//     GetBackend(type) as flanneld's main does ("unknown backend type");
//   - for vxlan, the backend block decoded into flannel's exported
//     vxlan.VXLANConfig as parseVXLANConfig does (wrong types fail), plus,
//     stricter than flannel (which ignores them), unknown keys fail. For
//     os=windows the Windows backend's fields (Name, MacPrefix, VNI, Port,
//     GBP, DirectRouting: the anonymous struct in vxlan_windows.go, restated
//     here) and its rules VNI >= 4096 and Port == 4789 apply instead.
func checkFlannelNetConf(path, osName string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := subnet.ParseConfig(string(data))
	if err != nil {
		return fmt.Errorf("error parsing subnet config: %w", err)
	}
	if err := subnet.CheckNetworkConfig(cfg); err != nil {
		return err
	}

	bt := strings.ToLower(cfg.BackendType)
	switch bt {
	case "udp", "tencent-vpc":
		return fmt.Errorf("backend type %q: not compiled into hke-k8s-check (flannel's udp needs cgo; udp is also the default when Backend is omitted)", bt)
	}
	if osName == "windows" && bt != "vxlan" && bt != "host-gw" {
		// flannel's Windows build registers only these two
		// (vxlan_windows.go, hostgw_windows.go).
		return fmt.Errorf("unknown backend type: %v (flannel on Windows has vxlan and host-gw)", bt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := backend.NewManager(ctx, nil, &backend.ExternalInterface{}).GetBackend(bt); err != nil {
		return err
	}

	if bt != "vxlan" {
		return nil
	}
	if osName == "windows" {
		var w struct {
			Type          string
			Name          string
			MacPrefix     string
			VNI           int
			Port          int
			GBP           bool
			DirectRouting bool
		}
		w.VNI, w.Port = windowsVXLANMinVNI, windowsVXLANPort
		if err := strictJSON(cfg.Backend, &w); err != nil {
			return fmt.Errorf("error decoding VXLAN backend config: %w", err)
		}
		if w.VNI < windowsVXLANMinVNI {
			return fmt.Errorf("invalid VXLAN backend config. VNI [%v] must be greater than or equal to %v on Windows", w.VNI, windowsVXLANMinVNI)
		}
		if w.Port != windowsVXLANPort {
			return fmt.Errorf("invalid VXLAN backend config. Port [%v] is not supported on Windows. Omit the setting to default to port %v", w.Port, windowsVXLANPort)
		}
		return nil
	}
	var lenient vxlan.VXLANConfig
	if err := json.Unmarshal(cfg.Backend, &lenient); err != nil {
		return fmt.Errorf("error decoding VXLAN backend config: %w", err)
	}
	var strict struct {
		Type string
		vxlan.VXLANConfig
	}
	if err := strictJSON(cfg.Backend, &strict); err != nil {
		return fmt.Errorf("VXLAN backend config (flannel ignores unknown keys): %w", err)
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
