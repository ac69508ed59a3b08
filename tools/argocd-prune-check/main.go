// Command argocd-prune-check asks Argo CD's own engine (github.com/argoproj/gitops-engine,
// pkg/cache) which PolicyVersions in one namespace it would treat as managed live objects of
// an Application, and so prune once they are gone from Git.
//
// It builds a gitops-engine cluster cache for the namespace, fills each cached resource's
// info the way Argo CD's application controller does with label tracking (the app name is
// the tracking label's value, recorded only for root resources, i.e. resources without
// ownerReferences), and calls ClusterCache.GetManagedLiveObjs with an empty target list
// (everything was deleted from Git) and an isManaged predicate comparing that app name with
// --app, the call Argo CD's controller makes to collect live objects for diff and prune.
// gitops-engine itself skips every resource that has ownerReferences there, which is why an
// owned object is never pruned.
//
//	argocd-prune-check --kubeconfig PATH --namespace NS [--tracking-label KEY] [--app NAME]
//
// prints one JSON object on stdout:
//
//	{"namespace":"ns","app":"demo","trackingLabel":"app.kubernetes.io/instance",
//	 "gitopsEngine":"v0.7.1-...","managedCount":1,
//	 "versions":[{"name":"a-v1","managed":true,"ownerReferences":0,"owners":[],"trackingLabel":"demo"}]}
//
// managedCount counts every object of the namespace (of any kind) that GetManagedLiveObjs
// returned. Without --app any non-empty tracking label value counts as a match. Exit status
// is 0 whenever the check ran, whatever it found; 1 on an error, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"time"

	"github.com/argoproj/gitops-engine/pkg/cache"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	group   = "guardrails.dev"
	version = "v1alpha1"
	kind    = "PolicyVersion"
)

var policyVersions = schema.GroupVersionResource{Group: group, Version: version, Resource: "policyversions"}

type options struct {
	kubeconfig    string
	namespace     string
	trackingLabel string
	app           string
	timeout       time.Duration
	verbose       bool
}

type versionResult struct {
	Name            string   `json:"name"`
	Managed         bool     `json:"managed"`
	OwnerReferences int      `json:"ownerReferences"`
	Owners          []string `json:"owners"`
	TrackingLabel   string   `json:"trackingLabel"`
}

type report struct {
	Namespace     string          `json:"namespace"`
	App           string          `json:"app"`
	TrackingLabel string          `json:"trackingLabel"`
	GitopsEngine  string          `json:"gitopsEngine"`
	ManagedCount  int             `json:"managedCount"`
	Versions      []versionResult `json:"versions"`
}

// appInfo is what the populate handler stores on each cached resource, standing in for
// Argo CD's ResourceInfo.AppName.
type appInfo struct {
	appName string
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "argocd-prune-check:", err)
		os.Exit(2)
	}
	rep, err := run(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-prune-check:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-prune-check:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("argocd-prune-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "path to the kubeconfig (default $KUBECONFIG)")
	fs.StringVar(&o.namespace, "namespace", "", "namespace to check (required)")
	fs.StringVar(&o.trackingLabel, "tracking-label", "app.kubernetes.io/instance", "Argo CD's application instance label key")
	fs.StringVar(&o.app, "app", "", "Application name the label must equal (empty: any non-empty value)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up if the cluster cache has not synced by then")
	fs.BoolVar(&o.verbose, "v", false, "log gitops-engine's messages to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case o.kubeconfig == "":
		return o, errors.New("--kubeconfig is required (or set KUBECONFIG)")
	case o.namespace == "":
		return o, errors.New("--namespace is required")
	case o.trackingLabel == "":
		return o, errors.New("--tracking-label must not be empty")
	}
	return o, nil
}

func run(o options) (*report, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", o.kubeconfig, err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	// Argo CD's own client defaults (ARGOCD_K8S_CLIENT_QPS/BURST); client-go's 5/10 would
	// throttle the cache's initial list of every API in the namespace for seconds.
	cfg.QPS, cfg.Burst = 50, 100

	log := logr.Discard()
	if o.verbose {
		log = funcr.New(func(prefix, args string) {
			fmt.Fprintln(os.Stderr, prefix, args)
		}, funcr.Options{Verbosity: 1})
	}

	clusterCache := cache.NewClusterCache(cfg,
		cache.SetNamespaces([]string{o.namespace}),
		cache.SetLogr(log),
		cache.SetPopulateResourceInfoHandler(func(un *unstructured.Unstructured, isRoot bool) (any, bool) {
			// As Argo CD's controller (controller/cache/cache.go): the app name is recorded
			// only for root resources, and only resources with an app name (or CRDs) keep
			// their manifest in the cache.
			info := &appInfo{}
			if name := un.GetLabels()[o.trackingLabel]; isRoot && name != "" {
				info.appName = name
			}
			return info, info.appName != "" || un.GetKind() == kube.CustomResourceDefinitionKind
		}),
	)
	defer clusterCache.Invalidate()

	synced := make(chan error, 1)
	go func() { synced <- clusterCache.EnsureSynced() }()
	select {
	case err := <-synced:
		if err != nil {
			return nil, fmt.Errorf("sync gitops-engine cluster cache: %w", err)
		}
	case <-time.After(o.timeout):
		return nil, fmt.Errorf("gitops-engine cluster cache not synced after %s", o.timeout)
	}

	isManaged := func(r *cache.Resource) bool {
		info, ok := r.Info.(*appInfo)
		if !ok || info.appName == "" {
			return false
		}
		return o.app == "" || info.appName == o.app
	}
	// Empty targets: nothing is in Git any more, so everything managed is a prune candidate.
	managed, err := clusterCache.GetManagedLiveObjs(nil, isManaged)
	if err != nil {
		return nil, fmt.Errorf("GetManagedLiveObjs: %w", err)
	}

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	list, err := dyn.Resource(policyVersions).Namespace(o.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", policyVersions.Resource, o.namespace, err)
	}

	rep := &report{
		Namespace:     o.namespace,
		App:           o.app,
		TrackingLabel: o.trackingLabel,
		GitopsEngine:  moduleVersion("github.com/argoproj/gitops-engine"),
		ManagedCount:  len(managed),
		Versions:      []versionResult{},
	}
	for _, pv := range list.Items {
		owners := []string{}
		for _, ref := range pv.GetOwnerReferences() {
			owners = append(owners, ref.Kind+"/"+ref.Name)
		}
		_, isManagedObj := managed[kube.NewResourceKey(group, kind, pv.GetNamespace(), pv.GetName())]
		rep.Versions = append(rep.Versions, versionResult{
			Name:            pv.GetName(),
			Managed:         isManagedObj,
			OwnerReferences: len(pv.GetOwnerReferences()),
			Owners:          owners,
			TrackingLabel:   pv.GetLabels()[o.trackingLabel],
		})
	}
	sort.Slice(rep.Versions, func(i, j int) bool { return rep.Versions[i].Name < rep.Versions[j].Name })
	return rep, nil
}

// moduleVersion reports the linked version of a dependency, so the output names the
// gitops-engine it was checked against.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "unknown"
}
