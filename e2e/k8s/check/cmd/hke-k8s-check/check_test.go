package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each case runs the in-process check for one item and says whether the
// upstream code must accept it and, when it must not, a fragment of the
// expected error.
type tc struct {
	name    string
	item    Item
	file    string // content of item.Path (written under the case's name), if any
	fname   string // file name to write; defaults to "f"
	wantErr string // "" = must pass
}

func runCases(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := c.item
			it.Name = c.name
			if it.OS == "" {
				it.OS = "linux"
			}
			if c.file != "" {
				fn := c.fname
				if fn == "" {
					fn = "f"
				}
				it.Path = filepath.Join(t.TempDir(), fn)
				if err := os.WriteFile(it.Path, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := checkItem(it)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("want ok, got: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got ok", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want error containing %q, got: %v", c.wantErr, err)
			}
			if err != nil {
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}

func TestPlatform(t *testing.T) {
	runCases(t, []tc{
		{name: "os-version-in-parens", item: Item{Kind: KindPlatform, Value: "windows(10.0.20348)/amd64"}},
		{name: "plain", item: Item{Kind: KindPlatform, Value: "linux/arm64/v8"}},
		{name: "version-after-colon", item: Item{Kind: KindPlatform, Value: "windows/amd64:10.0.20348"}, wantErr: "invalid"},
	})
}

const containerdV3 = `version = 3

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'registry.k8s.io/pause:3.10.1'

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = true

[plugins.'io.containerd.grpc.v1.cri']
  stream_idle_timeout = '4h0m0s'
`

func TestContainerdConfig(t *testing.T) {
	runCases(t, []tc{
		{name: "minimal-v3", item: Item{Kind: KindContainerdConfig}, file: "version = 3\n"},
		{name: "v3-cri", item: Item{Kind: KindContainerdConfig}, file: containerdV3},
		{name: "v2-migrated", item: Item{Kind: KindContainerdConfig}, file: `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
`},
		{name: "windows-hyperv-runtime", item: Item{Kind: KindContainerdConfig, OS: "windows"}, file: `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor]
  runtime_type = 'io.containerd.runhcs.v1'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor.options]
    SandboxIsolation = 1
`},
		{name: "same-table-twice", item: Item{Kind: KindContainerdConfig}, file: containerdV3 + `
[plugins.'io.containerd.grpc.v1.cri']
  stream_idle_timeout = '1h'
`, wantErr: "LoadConfig"},
		{name: "unknown-cri-key", item: Item{Kind: KindContainerdConfig}, file: `version = 3
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinuxx = true
`, wantErr: "enable_selinuxx"},
		{name: "wrong-type", item: Item{Kind: KindContainerdConfig}, file: `version = 3
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 7
`, wantErr: "io.containerd.cri.v1.images"},
		{name: "unknown-default-runtime", item: Item{Kind: KindContainerdConfig}, file: `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'crun'
`, wantErr: "default_runtime_name"},
		{name: "unknown-top-level", item: Item{Kind: KindContainerdConfig}, file: "version = 3\n[plugin.'io.containerd.cri.v1.images']\nsnapshotter = 'native'\n", wantErr: "unknown keys"},
		{name: "version-too-new", item: Item{Kind: KindContainerdConfig}, file: "version = 4\n", wantErr: "version"},
	})
}

const conflist = `{
  "name": "cbr0",
  "cniVersion": "1.0.0",
  "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`

func TestCNI(t *testing.T) {
	runCases(t, []tc{
		{name: "conflist", item: Item{Kind: KindCNI}, fname: "10-flannel.conflist", file: conflist},
		{name: "conflist-as-conf", item: Item{Kind: KindCNI}, fname: "10-x.conf", file: conflist, wantErr: "type"},
		{name: "single-conf", item: Item{Kind: KindCNI}, fname: "10-bridge.conf", file: `{"cniVersion":"0.4.0","name":"b","type":"bridge"}`},
		{name: "bad-version", item: Item{Kind: KindCNI}, fname: "10-x.conflist", file: strings.Replace(conflist, "1.0.0", "9.9.9", 1), wantErr: "cniVersion"},
		{name: "plugin-without-type", item: Item{Kind: KindCNI}, fname: "10-x.conflist", file: `{"name":"n","cniVersion":"1.0.0","plugins":[{"foo":1}]}`, wantErr: "type"},
		{name: "wrong-extension", item: Item{Kind: KindCNI}, fname: "10-x.conflist.txt", file: conflist, wantErr: "no network config"},
	})
}

func TestFlannelNetConf(t *testing.T) {
	runCases(t, []tc{
		{name: "vxlan", item: Item{Kind: KindFlannelNetConf}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789}}`},
		{name: "host-gw", item: Item{Kind: KindFlannelNetConf}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}`},
		{name: "windows-vxlan", item: Item{Kind: KindFlannelNetConf, OS: "windows"}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":4096}}`},
		{name: "windows-vni-1", item: Item{Kind: KindFlannelNetConf, OS: "windows"}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1}}`, wantErr: "VNI"},
		{name: "unknown-backend", item: Item{Kind: KindFlannelNetConf}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlann"}}`, wantErr: "unknown backend type"},
		{name: "vni-string", item: Item{Kind: KindFlannelNetConf}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":"one"}}`, wantErr: "VXLAN"},
		{name: "vxlan-typo", item: Item{Kind: KindFlannelNetConf}, file: `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRoute":true}}`, wantErr: "DirectRoute"},
		{name: "no-network", item: Item{Kind: KindFlannelNetConf}, file: `{"Backend":{"Type":"vxlan"}}`, wantErr: "Network"},
		{name: "not-json", item: Item{Kind: KindFlannelNetConf}, file: `Network: 10.244.0.0/16`, wantErr: "parsing"},
	})
}

func TestKubeletFlags(t *testing.T) {
	good := []string{"--config=/var/lib/kubelet/config.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--node-ip=10.0.0.4",
		"--container-runtime-endpoint=unix:///run/containerd/containerd.sock", "--node-labels=node.kubernetes.io/exclude-from-external-load-balancers=true",
		"--v=2"}
	runCases(t, []tc{
		{name: "linux", item: Item{Kind: KindKubeletFlags, Args: good}},
		{name: "network-plugin-removed", item: Item{Kind: KindKubeletFlags, Args: []string{"--network-plugin=cni"}}, wantErr: "network-plugin"},
		{name: "windows-service-on-linux", item: Item{Kind: KindKubeletFlags, Args: []string{"--windows-service"}}, wantErr: "windows-service"},
		{name: "windows", item: Item{Kind: KindKubeletFlags, OS: "windows", Args: append([]string{"--windows-service", "--windows-priorityclass=ABOVE_NORMAL_PRIORITY_CLASS", "--hostname-override=win-0", "--enforce-node-allocatable="}, good...)}},
		{name: "cadvisor-flag-on-windows", item: Item{Kind: KindKubeletFlags, OS: "windows", Args: []string{"--housekeeping-interval=10s"}}, wantErr: "housekeeping-interval"},
		{name: "cadvisor-flag-on-linux", item: Item{Kind: KindKubeletFlags, Args: []string{"--housekeeping-interval=10s"}}},
		{name: "positional", item: Item{Kind: KindKubeletFlags, Args: []string{"--v=2", "run"}}, wantErr: "unknown command"},
		{name: "unknown-gate", item: Item{Kind: KindKubeletFlags, Args: []string{"--feature-gates=NoSuchGate=true"}}, wantErr: "NoSuchGate"},
		{name: "bad-label", item: Item{Kind: KindKubeletFlags, Args: []string{"--node-labels=kubernetes.io/role=master"}}, wantErr: "labels"},
	})
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
`

func TestKubeletConfig(t *testing.T) {
	runCases(t, []tc{
		{name: "ok", item: Item{Kind: KindKubeletConfig}, file: kubeletConfig},
		{name: "windows", item: Item{Kind: KindKubeletConfig, OS: "windows"}, file: kubeletConfig + "cgroupsPerQOS: false\nenforceNodeAllocatable: []\n"},
		{name: "unknown-field", item: Item{Kind: KindKubeletConfig}, file: kubeletConfig + "cgroupDrivr: systemd\n", wantErr: "cgroupDrivr"},
		{name: "invalid-value", item: Item{Kind: KindKubeletConfig}, file: kubeletConfig + "maxPods: -1\n", wantErr: "maxPods"},
		{name: "user-namespaces-on-windows", item: Item{Kind: KindKubeletConfig, OS: "windows"}, file: kubeletConfig + "userNamespaces:\n  idsPerPod: 65536\n", wantErr: "Windows"},
	})
}

const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.244.0.0/16
`

func TestKubeProxy(t *testing.T) {
	runCases(t, []tc{
		{name: "config", item: Item{Kind: KindKubeProxyConfig}, file: kubeProxyConfig + "mode: iptables\n"},
		{name: "config-windows", item: Item{Kind: KindKubeProxyConfig, OS: "windows"}, file: kubeProxyConfig + "mode: kernelspace\nwinkernel:\n  networkName: flannel.4096\n"},
		{name: "config-kernelspace-on-linux", item: Item{Kind: KindKubeProxyConfig}, file: kubeProxyConfig + "mode: kernelspace\n", wantErr: "ProxyMode"},
		{name: "config-iptables-on-windows", item: Item{Kind: KindKubeProxyConfig, OS: "windows"}, file: kubeProxyConfig + "mode: iptables\n", wantErr: "ProxyMode"},
		{name: "config-unknown-field", item: Item{Kind: KindKubeProxyConfig}, file: kubeProxyConfig + "clusterCidr2: x\n", wantErr: "clusterCidr2"},
		{name: "flags", item: Item{Kind: KindKubeProxyFlags, Args: []string{"--config=/var/lib/kube-proxy/config.conf", "--hostname-override=node-0", "--v=2"}}},
		{name: "flags-only", item: Item{Kind: KindKubeProxyFlags, Args: []string{"--cluster-cidr=10.244.0.0/16", "--proxy-mode=nftables", "--v=2"}}},
		{name: "flags-only-invalid", item: Item{Kind: KindKubeProxyFlags, Args: []string{"--proxy-mode=userspace"}}, wantErr: "ProxyMode"},
		{name: "flags-windows", item: Item{Kind: KindKubeProxyFlags, OS: "windows", Args: []string{"--windows-service", "--network-name=flannel.4096", "--source-vip=10.244.1.2", "--enable-dsr=false", "--proxy-mode=kernelspace", "--hostname-override=win-0"}}},
		{name: "flags-windows-on-linux", item: Item{Kind: KindKubeProxyFlags, Args: []string{"--network-name=flannel.4096"}}, wantErr: "network-name"},
		{name: "flags-unknown", item: Item{Kind: KindKubeProxyFlags, Args: []string{"--masquerade-al=true"}}, wantErr: "masquerade-al"},
	})
}

const kubeadmInit = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.4
  bindPort: 6443
nodeRegistration:
  name: k8s-master-0
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.4
controlPlaneEndpoint: 10.0.0.4:6443
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
` + kubeletConfig + "---\n" + kubeProxyConfig

const kubeadmJoin = `apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 10.0.0.4:6443
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: true
nodeRegistration:
  name: k8s-node-0
  criSocket: unix:///run/containerd/containerd.sock
`

func TestKubeadmConfig(t *testing.T) {
	runCases(t, []tc{
		{name: "init", item: Item{Kind: KindKubeadmConfig}, file: kubeadmInit},
		{name: "join", item: Item{Kind: KindKubeadmConfig}, file: kubeadmJoin},
		{name: "unknown-field", item: Item{Kind: KindKubeadmConfig}, file: strings.Replace(kubeadmInit, "controlPlaneEndpoint:", "controlPlaneEndpoit:", 1), wantErr: "controlPlaneEndpoit"},
		{name: "unknown-field-in-kubelet-doc", item: Item{Kind: KindKubeadmConfig}, file: strings.Replace(kubeadmInit, "cgroupDriver:", "cgroupDrivr:", 1), wantErr: "cgroupDrivr"},
		{name: "kubelet-doc-twice", item: Item{Kind: KindKubeadmConfig}, file: kubeadmInit + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: -1\n", wantErr: "twice"},
		{name: "invalid-kubelet-value", item: Item{Kind: KindKubeadmConfig}, file: strings.Replace(kubeadmInit, "cgroupDriver: systemd", "cgroupDriver: systemd\nmaxPods: -1", 1), wantErr: "maxPods"},
		// kubeadm config validate only warns about the deprecated v1beta3 ...
		{name: "deprecated-v1beta3", item: Item{Kind: KindKubeadmConfig}, file: strings.ReplaceAll(kubeadmJoin, "v1beta4", "v1beta3")},
		// ... and refuses the removed v1beta2.
		{name: "removed-v1beta2", item: Item{Kind: KindKubeadmConfig}, file: strings.ReplaceAll(kubeadmJoin, "v1beta4", "v1beta2"), wantErr: "old API spec"},
		{name: "join-without-discovery", item: Item{Kind: KindKubeadmConfig}, file: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n", wantErr: "discovery"},
	})
}

func TestIndexAndRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10-flannel.conflist"), []byte(conflist), 0o600); err != nil {
		t.Fatal(err)
	}
	index := `{"items": [
  {"kind": "platform", "name": "good", "value": "windows(10.0.20348)/amd64"},
  {"kind": "platform", "name": "bad", "value": "windows/amd64:10.0.20348"},
  {"kind": "cni", "name": "relative path", "path": "10-flannel.conflist"}
]}`
	ip := filepath.Join(dir, "index.json")
	if err := os.WriteFile(ip, []byte(index), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"-inproc", ip}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"ok   platform good", "FAIL platform bad: ", "ok   cni relative path", "2 passed, 1 failed"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}

	for name, bad := range map[string]string{
		"unknown kind":  `{"items":[{"kind":"nope","name":"x"}]}`,
		"unknown key":   `{"items":[{"kind":"platform","name":"x","value":"linux","extra":1}]}`,
		"missing path":  `{"items":[{"kind":"cni","name":"x"}]}`,
		"bad os":        `{"items":[{"kind":"kubelet-flags","name":"x","os":"darwin","args":[]}]}`,
		"missing items": `{}`,
		"not json":      `items: []`,
	} {
		p := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errOut.Reset()
		if code := run([]string{"-inproc", p}, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d, want 2 (stderr %s)", name, code, errOut.String())
		}
	}
}
