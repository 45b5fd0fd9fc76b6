package main

import (
	"fmt"
	"os"
	"sort"

	kubeproxyconfigv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeadmutil "k8s.io/kubernetes/cmd/kubeadm/app/util"
	configutil "k8s.io/kubernetes/cmd/kubeadm/app/util/config"
)

// checkKubeadmConfig does what `kubeadm config validate --config FILE` does:
// cmd/kubeadm/app/cmd/config.go newCmdConfigValidate reads the file and calls
// configutil.ValidateConfig(bytes, allowDeprecated=false, allowExperimental=false).
// That splits the documents (a kind given twice fails), rejects unknown
// GroupVersionKinds, strictly decodes every document against kubeadm's scheme
// plus its component-config scheme (kubelet.config.k8s.io,
// kubeproxy.config.k8s.io), then defaults, applies the dynamic defaults and
// validates InitConfiguration+ClusterConfiguration and/or JoinConfiguration.
//
// kubeadm does not run the kubelet's or kube-proxy's own validation on the
// component-config documents, so afterwards each KubeletConfiguration and
// KubeProxyConfiguration document is also put through the same checks as a
// standalone kubelet-config / kube-proxy-config item (strict decode with the
// component's own scheme, then its own validation, Linux rules).
//
// Note: the kubernetesVersion check compares against the kubeadm version
// linked into this binary (k8s.io/component-base/version, set by build.sh's
// -ldflags); without those ldflags (go test) kubeadm skips the skew check.
func checkKubeadmConfig(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := configutil.ValidateConfig(data, false, false); err != nil {
		return fmt.Errorf("kubeadm config validate: %w", err)
	}

	docs, err := kubeadmutil.SplitConfigDocuments(data)
	if err != nil {
		return err
	}
	type doc struct {
		key  string
		data []byte
		kind string
	}
	var extra []doc
	for gvk, b := range docs {
		switch {
		case gvk.Group == kubeletconfigv1beta1.GroupName && gvk.Kind == "KubeletConfiguration":
			extra = append(extra, doc{gvk.String(), b, "kubelet"})
		case gvk.Group == kubeproxyconfigv1alpha1.GroupName && gvk.Kind == "KubeProxyConfiguration":
			extra = append(extra, doc{gvk.String(), b, "kube-proxy"})
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].key < extra[j].key })
	for _, d := range extra {
		var err error
		if d.kind == "kubelet" {
			err = checkKubeletConfigBytes(d.data, "linux")
		} else {
			err = checkKubeProxyConfigBytes(d.data, "linux")
		}
		if err != nil {
			return fmt.Errorf("%s document: %w", d.key, err)
		}
	}
	return nil
}
