package config

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TESTSHIP_RUNNER_RULES adds namespaced rights to the remote test's Role.
// It refuses anything that would let the test gain more rights than the
// rule says (start pods or change what they run, read tokens or any
// Secret, touch RBAC), and cluster-scoped resources, which a Role cannot
// grant.

// allowedVerbs are the verbs TESTSHIP_RUNNER_RULES accepts.
var allowedVerbs = map[string]bool{"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// podMakers are workloads whose create/update/patch starts pods with any
// image and service account of the namespace; their /scale is harmless.
var podMakers = map[string]bool{"deployments": true, "replicasets": true, "statefulsets": true, "daemonsets": true,
	"jobs": true, "cronjobs": true, "replicationcontrollers": true}

// scalable are the podMakers with a /scale subresource.
var scalable = map[string]bool{"deployments": true, "replicasets": true, "statefulsets": true, "replicationcontrollers": true}

// clusterScoped are resources a Role cannot grant.
var clusterScoped = map[string]bool{
	"nodes": true, "namespaces": true, "persistentvolumes": true, "componentstatuses": true,
	"storageclasses": true, "csinodes": true, "csidrivers": true, "volumeattachments": true, "volumeattributesclasses": true,
	"clusterroles": true, "clusterrolebindings": true, "customresourcedefinitions": true, "apiservices": true,
	"priorityclasses": true, "runtimeclasses": true, "ingressclasses": true, "ipaddresses": true, "servicecidrs": true,
	"mutatingwebhookconfigurations": true, "validatingwebhookconfigurations": true,
	"validatingadmissionpolicies": true, "validatingadmissionpolicybindings": true,
	"mutatingadmissionpolicies": true, "mutatingadmissionpolicybindings": true,
	"certificatesigningrequests": true, "clustertrustbundles": true, "flowschemas": true, "prioritylevelconfigurations": true,
	"tokenreviews": true, "subjectaccessreviews": true, "selfsubjectaccessreviews": true, "selfsubjectrulesreviews": true,
	"selfsubjectreviews": true, "podsecuritypolicies": true, "deviceclasses": true, "resourceslices": true,
}

const rulesWant = "verb,verb:resource,resource[.group][@name,name] separated by ';' that grant no more than they name, e.g. delete:pods;patch:deployments/scale.apps;get:secrets@db-password"

// ParseRules parses TESTSHIP_RUNNER_RULES: verb,verb:resource,resource[.group]
// with an optional @name,name restricting the rule to named objects
// (resourceNames), rules separated by ';'. Subresources are written
// resource/sub (deployments/scale.apps). Every rule that escalates is
// refused, each named in the error.
func ParseRules(s string) ([]rbacv1.PolicyRule, error) {
	c := &checker{}
	var out []rbacv1.PolicyRule
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		rules, why := parseRule(item)
		if why != "" {
			c.bad(RunRules, s, fmt.Sprintf("rule %q: %s", item, why), rulesWant)
			continue
		}
		out = append(out, rules...)
	}
	return out, c.err()
}

// parseRule parses one rule, or says why it is refused.
func parseRule(item string) ([]rbacv1.PolicyRule, string) {
	rest, namesPart, hasNames := strings.Cut(item, "@")
	verbsPart, resPart, ok := strings.Cut(rest, ":")
	if !ok || strings.TrimSpace(resPart) == "" || strings.TrimSpace(verbsPart) == "" {
		return nil, "verbs and resources must be separated by ':'"
	}
	var names []string
	if hasNames {
		for _, n := range strings.Split(namesPart, ",") {
			n = strings.TrimSpace(n)
			if len(validation.IsDNS1123Subdomain(n)) > 0 {
				return nil, fmt.Sprintf("%q is not an object name", n)
			}
			names = append(names, n)
		}
	}
	var verbs []string
	for _, v := range strings.Split(verbsPart, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		switch {
		case v == "*":
			return nil, "the verb * grants every verb, present and future"
		case v == "escalate" || v == "bind" || v == "impersonate":
			return nil, fmt.Sprintf("the verb %s lets the test gain rights it was not given", v)
		case !allowedVerbs[v]:
			return nil, fmt.Sprintf("unknown verb %q: want get, list, watch, create, update, patch, delete or deletecollection", v)
		}
		verbs = append(verbs, v)
	}
	byGroup := map[string][]string{}
	var groups []string
	for _, res := range strings.Split(resPart, ",") {
		res = strings.TrimSpace(res)
		resource, group, _ := strings.Cut(res, ".")
		if resource == "" || strings.Contains(res, "*") {
			return nil, fmt.Sprintf("%q: wildcards and empty resources are not allowed", res)
		}
		if why := refuse(verbs, resource, group, len(names) > 0); why != "" {
			return nil, why
		}
		if _, seen := byGroup[group]; !seen {
			groups = append(groups, group)
		}
		byGroup[group] = append(byGroup[group], resource)
	}
	var out []rbacv1.PolicyRule
	for _, g := range groups {
		out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: byGroup[g], Verbs: verbs, ResourceNames: names})
	}
	return out, ""
}

// refuse says why verbs on resource (possibly resource/subresource) of
// group escalate, or "".
func refuse(verbs []string, resource, group string, named bool) string {
	base, sub, _ := strings.Cut(resource, "/")
	has := func(vs ...string) string {
		for _, v := range verbs {
			for _, w := range vs {
				if v == w {
					return v
				}
			}
		}
		return ""
	}
	switch {
	case group == "rbac.authorization.k8s.io":
		return "RBAC objects let the test grant itself any right"
	case clusterScoped[base]:
		return fmt.Sprintf("%s is cluster-scoped and a namespaced Role cannot grant it", base)
	case group == "" && base == "pods" && (sub == "exec" || sub == "attach" || sub == "ephemeralcontainers"):
		return fmt.Sprintf("pods/%s lets the test run commands in other pods, under their service accounts", sub)
	case group == "" && base == "pods" && sub == "" && has("create", "update", "patch") != "":
		return fmt.Sprintf("%s on pods lets the test run any image under any service account of the namespace", has("create", "update", "patch"))
	case group == "" && base == "serviceaccounts" && sub == "token":
		return "serviceaccounts/token lets the test take another service account's identity"
	case group == "" && base == "secrets" && !named:
		return "secrets must be named: write e.g. get:secrets@db-password so the test cannot read other runs' or Helm's Secrets"
	case group == "" && base == "secrets" && has("create", "deletecollection") != "":
		return fmt.Sprintf("%s cannot be limited to named secrets", has("create", "deletecollection"))
	case podMakers[base] && sub == "" && has("create", "update", "patch") != "":
		why := fmt.Sprintf("%s on %s lets the test start pods with any image and service account", has("create", "update", "patch"), base)
		if scalable[base] {
			why += fmt.Sprintf(" (%s/scale is allowed)", base)
		}
		return why
	}
	return ""
}
