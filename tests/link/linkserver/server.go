package linkserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// Server serves the link API:
//
//	POST /links            {"url": "...", "code": "optional"} → 201 {"code","url"}
//	GET  /links            → [{"code","url"}...]
//	GET  /links/{code}     → {"code","url"}
//	GET  /r/{code}         → 302 to the URL
//	GET  /stats            → {"created": N, "pod": "..."}  (N across all replicas)
//	GET  /                 → {"service":"link","message":"...","pod":"..."}
//	GET  /healthz          → 200 while the process runs
//	GET  /readyz           → 200 when the store answers
//
// Every response carries X-Link-Pod, the name of the replica that served it.
type Server struct {
	Store   Store
	Pod     string // replica name, e.g. from the downward API
	Message string // free text from the chart's ConfigMap
	Log     *log.Logger
}

var codeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /links", s.create)
	mux.HandleFunc("GET /links", s.list)
	mux.HandleFunc("GET /links/{code}", s.get)
	mux.HandleFunc("GET /r/{code}", s.resolve)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.json(w, http.StatusOK, map[string]string{"service": "link", "message": s.Message, "pod": s.Pod})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Link-Pod", s.Pod)
		mux.ServeHTTP(w, r)
	})
}

type createRequest struct {
	URL  string `json:"url"`
	Code string `json:"code,omitempty"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "body must be JSON {\"url\": ...}: "+err.Error())
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.fail(w, http.StatusBadRequest, "url must be an absolute http(s) URL")
		return
	}
	code := req.Code
	if code == "" {
		code = newCode()
	} else if !codeRE.MatchString(code) {
		s.fail(w, http.StatusBadRequest, "code must be 1-64 of A-Z a-z 0-9 _ -")
		return
	}
	l := Link{Code: code, URL: u.String()}
	switch err := s.Store.Create(r.Context(), l); {
	case errors.Is(err, ErrExists):
		s.fail(w, http.StatusConflict, "code "+code+" already exists")
	case err != nil:
		s.fail(w, http.StatusInternalServerError, err.Error())
	default:
		s.logf("created %s -> %s", l.Code, l.URL)
		s.json(w, http.StatusCreated, l)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	links, err := s.Store.List(r.Context())
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.json(w, http.StatusOK, links)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (Link, bool) {
	l, err := s.Store.Get(r.Context(), r.PathValue("code"))
	switch {
	case errors.Is(err, ErrNotFound):
		s.fail(w, http.StatusNotFound, "no link "+r.PathValue("code"))
	case err != nil:
		s.fail(w, http.StatusInternalServerError, err.Error())
	default:
		return l, true
	}
	return Link{}, false
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if l, ok := s.lookup(w, r); ok {
		s.json(w, http.StatusOK, l)
	}
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	if l, ok := s.lookup(w, r); ok {
		http.Redirect(w, r, l.URL, http.StatusFound)
	}
}

// Stats is the body of GET /stats.
type Stats struct {
	Created int    `json:"created"`
	Pod     string `json:"pod"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	n, err := s.Store.Created(r.Context())
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.json(w, http.StatusOK, Stats{Created: n, Pod: s.Pod})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Write([]byte("ready\n"))
}

func (s *Server) json(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, code int, msg string) {
	s.json(w, code, map[string]string{"error": msg})
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log.Printf(format, args...)
	}
}

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newCode() string {
	b := make([]byte, 7)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
