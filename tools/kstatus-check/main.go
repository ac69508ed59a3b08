// Command kstatus-check reads a JSON list of Kubernetes objects on stdin (a JSON array, or a
// `kind: List` object as `kubectl get -o json` prints) and prints, one JSON object a line,
// what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute) makes of each:
//
//	{"name":"ns/kind/name","status":"Current","message":"Resource is Ready"}
//
// It is the same library Flux's kustomize-controller and kpt use for health, so the tests
// check the operator's status against the real thing rather than a re-implementation.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus-check:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	var items []map[string]interface{}
	// utiljson keeps integers as int64, as unstructured accessors (metadata.generation) expect.
	if err := utiljson.Unmarshal(raw, &items); err != nil {
		var list struct {
			Items []map[string]interface{} `json:"items"`
		}
		if err2 := utiljson.Unmarshal(raw, &list); err2 != nil {
			return fmt.Errorf("stdin is neither a JSON array nor a List: %w", err)
		}
		items = list.Items
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for _, obj := range items {
		u := &unstructured.Unstructured{Object: obj}
		name := u.GetName()
		if ns := u.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		res, err := status.Compute(u)
		r := result{Name: name}
		if err != nil {
			r.Status = "Error"
			r.Message = err.Error()
		} else {
			r.Status = res.Status.String()
			r.Message = res.Message
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return w.Flush()
}
