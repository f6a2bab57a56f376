// Package ecrfake serves the ECR control-plane calls testship makes
// (GetAuthorizationToken, CreateRepository, DescribeImages) in the AWS JSON
// 1.1 protocol, in front of a real registry, so tests can drive the real
// aws-sdk-go-v2 client through AWS_ENDPOINT_URL_ECR. The token it hands out
// is the registry's own basic-auth credentials; DescribeImages asks the
// registry whether the tag exists.
package ecrfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a running fake ECR endpoint.
type Server struct {
	*httptest.Server
	Registry       string // host:port of the real registry behind it
	User, Password string // the registry's credentials, handed out as the token
	AccessKey      string // the only AWS access key ID it accepts

	mu    sync.Mutex
	repos map[string]bool
	calls map[string]int
}

// Start serves the fake on 127.0.0.1.
func Start(registry, user, password, accessKey string) *Server {
	s := &Server{Registry: registry, User: user, Password: password, AccessKey: accessKey,
		repos: map[string]bool{}, calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Calls returns how often each operation was called.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Repositories lists the repositories created so far.
func (s *Server) Repositories() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for r := range s.repos {
		out = append(out, r)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonEC2ContainerRegistry_V20150921.")
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+s.AccessKey+"/") {
		fail(w, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	var in struct {
		RepositoryName string `json:"repositoryName"`
		ImageIDs       []struct {
			ImageTag string `json:"imageTag"`
		} `json:"imageIds"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	switch op {
	case "GetAuthorizationToken":
		token := base64.StdEncoding.EncodeToString([]byte(s.User + ":" + s.Password))
		reply(w, map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": token,
			"expiresAt":          float64(time.Now().Add(12 * time.Hour).Unix()),
			"proxyEndpoint":      "http://" + s.Registry,
		}}})
	case "CreateRepository":
		s.mu.Lock()
		exists := s.repos[in.RepositoryName]
		s.repos[in.RepositoryName] = true
		s.mu.Unlock()
		if exists {
			fail(w, "RepositoryAlreadyExistsException", fmt.Sprintf("The repository with name '%s' already exists", in.RepositoryName))
			return
		}
		reply(w, map[string]any{"repository": map[string]any{"repositoryName": in.RepositoryName,
			"repositoryUri": s.Registry + "/" + in.RepositoryName}})
	case "DescribeImages":
		s.mu.Lock()
		exists := s.repos[in.RepositoryName]
		s.mu.Unlock()
		if !exists {
			fail(w, "RepositoryNotFoundException", fmt.Sprintf("The repository with name '%s' does not exist", in.RepositoryName))
			return
		}
		if len(in.ImageIDs) != 1 {
			fail(w, "InvalidParameterException", "want exactly one imageId")
			return
		}
		digest, err := s.head(in.RepositoryName, in.ImageIDs[0].ImageTag)
		if err != nil {
			fail(w, "ServerException", err.Error())
			return
		}
		if digest == "" {
			fail(w, "ImageNotFoundException", "The image requested does not exist")
			return
		}
		reply(w, map[string]any{"imageDetails": []map[string]any{{"imageDigest": digest,
			"imageTags": []string{in.ImageIDs[0].ImageTag}, "repositoryName": in.RepositoryName}}})
	default:
		fail(w, "UnknownOperationException", "ecrfake does not serve "+op)
	}
}

// head asks the real registry for the tag's digest ("" when absent).
func (s *Server) head(repo, tag string) (string, error) {
	req, _ := http.NewRequest(http.MethodHead, "http://"+s.Registry+"/v2/"+repo+"/manifests/"+tag, nil)
	req.SetBasicAuth(s.User, s.Password)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get("Docker-Content-Digest"), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", fmt.Errorf("registry answered %s", resp.Status)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
