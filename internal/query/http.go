package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/riffle-streams/riffle/topology"
)

// Prefix is the path under which Handler serves.
const Prefix = "/riffle/v1"

// Handler serves queries over HTTP, as JSON:
//
//	GET /riffle/v1/stores                                 the queryable stores
//	GET /riffle/v1/stores/{store}/get?key=K               one key
//	GET /riffle/v1/stores/{store}/range?from=K&to=K&limit=N&after=C
//	                                                      entries in [from, to), a page at a time
//	GET /riffle/v1/stores/{store}/all?limit=N&after=C     every entry, a page at a time
//	GET /riffle/v1/stores/{store}/windows?key=K&from=T&to=T
//	                                                      a key's windows (sessions) in a time range
//	GET /riffle/v1/stores/{store}/windows?from=T&to=T&limit=N&after=C
//	                                                      every key's windows (sessions) in a time
//	                                                      range, a page at a time
//	GET /riffle/v1/stores/{store}/owners?key=K            the instances that hold a key
//	GET /riffle/v1/metadata                               every instance's tasks, their state and lag
//
// Keys are JSON (a string key may also be given bare); times are RFC 3339
// or milliseconds since the epoch. A page's "next" is the cursor ("after")
// of the next one, "" after the last; limit is at most MaxPage. Every
// key's windows come in order of start, then of the key's bytes; sessions
// in order of end, then of the key's bytes (see Engine.AllWindows).
// stale=true allows answers from standby copies. A store that is
// restoring answers 503 with Retry-After, a malformed request 400, an
// unknown store 404, each with {"error": ...}.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"/stores", func(w http.ResponseWriter, r *http.Request) {
		type store struct {
			Name       string `json:"name"`
			Kind       string `json:"kind"`
			Partitions int32  `json:"partitions"`
		}
		out := []store{}
		for _, s := range e.B.Stores() {
			out = append(out, store{s.Name, s.Kind.String(), s.Partitions})
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("GET "+Prefix+"/stores/{store}/get", func(w http.ResponseWriter, r *http.Request) {
		o, key, err := params(r, "key")
		if err == nil {
			var res *KeyResult
			res, err = e.Get(r.Context(), r.PathValue("store"), key, o)
			reply(w, res, err)
			return
		}
		reply(w, nil, err)
	})
	rangeOf := func(all bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			o, _, err := params(r, "")
			if err != nil {
				reply(w, nil, err)
				return
			}
			q := r.URL.Query()
			limit, err := parseLimit(q.Get("limit"))
			if err != nil {
				reply(w, nil, err)
				return
			}
			from, to := q.Get("from"), q.Get("to")
			if all && (from != "" || to != "") {
				reply(w, nil, errorf(http.StatusBadRequest, "all takes no from or to: use range"))
				return
			}
			res, err := e.Range(r.Context(), r.PathValue("store"), from, to, q.Get("after"), limit, o)
			reply(w, res, err)
		}
	}
	mux.HandleFunc("GET "+Prefix+"/stores/{store}/range", rangeOf(false))
	mux.HandleFunc("GET "+Prefix+"/stores/{store}/all", rangeOf(true))
	mux.HandleFunc("GET "+Prefix+"/stores/{store}/windows", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, byKey := q["key"]
		keyParam := ""
		if byKey {
			keyParam = "key"
		}
		o, key, err := params(r, keyParam)
		if err != nil {
			reply(w, nil, err)
			return
		}
		from, err := parseTime(q.Get("from"), time.UnixMilli(0))
		if err != nil {
			reply(w, nil, errorf(http.StatusBadRequest, "from: %v", err))
			return
		}
		to, err := parseTime(q.Get("to"), time.UnixMilli(1<<53))
		if err != nil {
			reply(w, nil, errorf(http.StatusBadRequest, "to: %v", err))
			return
		}
		if byKey {
			if q.Has("limit") || q.Has("after") {
				reply(w, nil, errorf(http.StatusBadRequest, "a key's windows take no limit or after: leave out key to page through every key's"))
				return
			}
			res, err := e.Windows(r.Context(), r.PathValue("store"), key, from, to, o)
			reply(w, res, err)
			return
		}
		limit, err := parseLimit(q.Get("limit"))
		if err != nil {
			reply(w, nil, err)
			return
		}
		res, err := e.AllWindows(r.Context(), r.PathValue("store"), from, to, q.Get("after"), limit, o)
		reply(w, res, err)
	})
	mux.HandleFunc("GET "+Prefix+"/stores/{store}/owners", func(w http.ResponseWriter, r *http.Request) {
		_, key, err := params(r, "key")
		if err == nil {
			var res *OwnersResult
			res, err = e.Owners(r.PathValue("store"), key)
			reply(w, res, err)
			return
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("GET "+Prefix+"/metadata", func(w http.ResponseWriter, r *http.Request) {
		o, _, err := params(r, "")
		if err == nil {
			var res []Instance
			res, err = e.Metadata(r.Context(), o)
			reply(w, res, err)
			return
		}
		reply(w, nil, err)
	})
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			reply(w, nil, errorf(http.StatusMethodNotAllowed, "%s: only GET is served", r.Method))
			return
		}
		reply(w, nil, errorf(http.StatusNotFound, "no such query: %s", r.URL.Path))
	})
	return mux
}

// params reads the options every query takes, and the named key.
func params(r *http.Request, key string) (Options, string, error) {
	q := r.URL.Query()
	var o Options
	switch q.Get("stale") {
	case "", "false":
	case "true":
		o.Stale = true
	default:
		return o, "", errorf(http.StatusBadRequest, "stale=%q: want true or false", q.Get("stale"))
	}
	switch q.Get("scope") {
	case "":
	case "local":
		o.local = true
		if ts := q.Get("tasks"); ts != "" {
			for _, t := range strings.Split(ts, ",") {
				var s, p int
				if _, err := fmt.Sscanf(t, "%d_%d", &s, &p); err != nil || fmt.Sprintf("%d_%d", s, p) != t {
					return o, "", errorf(http.StatusBadRequest, "task %q is not <sub-topology>_<partition>", t)
				}
				o.tasks = append(o.tasks, topology.TaskID{Subtopology: s, Partition: int32(p)})
			}
		}
	default:
		return o, "", errorf(http.StatusBadRequest, "scope=%q: want local or nothing", q.Get("scope"))
	}
	if key == "" {
		return o, "", nil
	}
	k, ok := q[key]
	if !ok || len(k) != 1 {
		return o, "", errorf(http.StatusBadRequest, "give one %s", key)
	}
	return o, k[0], nil
}

// parseLimit reads a page's limit: a positive number, or empty for the
// default (0).
func parseLimit(l string) (int, error) {
	if l == "" {
		return 0, nil
	}
	limit, err := strconv.Atoi(l)
	if err != nil || limit <= 0 {
		return 0, errorf(http.StatusBadRequest, "limit %q is not a positive number", l)
	}
	return limit, nil
}

// parseTime reads RFC 3339 or milliseconds since the epoch; empty is def.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither RFC 3339 nor milliseconds since the epoch", s)
	}
	return t, nil
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		var qe *Error
		if !errors.As(err, &qe) {
			qe = &Error{Status: http.StatusInternalServerError, Msg: err.Error()}
		}
		if qe.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(qe.RetryAfter/time.Second))))
		}
		w.WriteHeader(qe.Status)
		json.NewEncoder(w).Encode(map[string]string{"error": qe.Msg})
		return
	}
	json.NewEncoder(w).Encode(v)
}
