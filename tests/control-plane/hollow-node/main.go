// hollow-node: a Kubernetes node for the tests that runs the kubelet's real code (pod workers,
// volume manager, the Secret volume plugin and its AtomicWriter) with a fake container runtime,
// image service, mounter and cAdvisor — kubemark's hollow kubelet, with the three settings the
// tests need and stock kubemark has no flags for:
//
//	--root-dir        where pod volumes are written (stock kubemark: a random dir under /tmp,
//	                  left behind on exit); the test reads a pod's Secret volume from here
//	--sync-frequency  the pod resync that propagates a Secret update into its volume (stock: 10 s)
//	127.0.0.1 only, random kubelet port, no read-only or healthz port, so tests run in parallel
//
// Built by ../build.sh from the same k8s.io/kubernetes module as the control plane.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	remote "k8s.io/cri-client/pkg"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	"k8s.io/kubernetes/pkg/kubemark"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the node's identity (system:node:<name> in group system:nodes)")
	name := flag.String("name", "hollow-node", "the Node's name")
	rootDir := flag.String("root-dir", "", "the kubelet's root directory (pods/<uid>/volumes/... lands here); created if missing")
	syncFrequency := flag.Duration("sync-frequency", time.Second, "pod resync period: how soon a Secret update reaches the pod's volume")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *rootDir == "" {
		fmt.Fprintln(os.Stderr, "hollow-node: --kubeconfig and --root-dir are required")
		os.Exit(2)
	}
	if err := run(*kubeconfig, *name, *rootDir, *syncFrequency); err != nil {
		fmt.Fprintf(os.Stderr, "hollow-node: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig, name, rootDir string, syncFrequency time.Duration) error {
	root, err := filepath.Abs(rootDir)
	if err != nil {
		return err
	}
	for _, d := range []string{root, filepath.Join(root, "static-pods"), filepath.Join(root, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	config.UserAgent = "hollow-kubelet"
	config.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}

	f, c := kubemark.GetHollowKubeletConfig(&kubemark.HollowKubeletOptions{
		NodeName: name,
		MaxPods:  110,
	})
	// GetHollowKubeletConfig made its own directory under /tmp: use ours instead.
	_ = os.RemoveAll(f.RootDirectory)
	f.RootDirectory = root
	c.StaticPodPath = filepath.Join(root, "static-pods")
	c.PodLogsDir = filepath.Join(root, "pod-logs")
	c.Address = "127.0.0.1"
	c.Port = 0
	c.ReadOnlyPort = 0
	c.HealthzPort = 0
	c.SyncFrequency.Duration = syncFrequency

	heartbeatConfig := *config
	heartbeatConfig.Timeout = c.NodeStatusUpdateFrequency.Duration
	heartbeatConfig.QPS = -1
	heartbeatClient, err := kubernetes.NewForConfig(&heartbeatConfig)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// The fake CRI runtime listens on a socket inside the root dir (stock: /tmp, left behind).
	endpoint := "unix://" + filepath.Join(root, "cri.sock")
	fakeRuntime := fakeremote.NewFakeRemoteRuntime()
	if err := fakeRuntime.Start(endpoint); err != nil {
		return fmt.Errorf("fake runtime: %w", err)
	}
	defer fakeRuntime.Stop()
	runtimeService, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(endpoint).
		WithConnectionTimeout(15 * time.Second).
		Build(ctx)
	if err != nil {
		return fmt.Errorf("runtime service: %w", err)
	}

	kubelet := kubemark.NewHollowKubelet(f, c, client, heartbeatClient,
		&cadvisortest.Fake{NodeName: name}, fakeRuntime.ImageService, runtimeService,
		cm.NewStubContainerManager())
	go kubelet.Run(ctx)
	<-ctx.Done()
	return nil
}
