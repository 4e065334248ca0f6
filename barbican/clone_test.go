package barbican

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Flow 2 over REST: image key with on_image_deletion and the image as
// consumer → clone for the volume → deleting the image destroys the image
// key and leaves the volume key working.
func TestCloneImageKeyForVolume(t *testing.T) {
	e := newEnv(t)
	key := bytes.Repeat([]byte{0x00, 0x9f, 0x04, 0xff}, 16)
	img := e.createSecret(map[string]any{"name": "image key", "secret_type": "symmetric", "algorithm": "aes",
		"bit_length": 512, "mode": "xts", "payload": base64.StdEncoding.EncodeToString(key),
		"payload_content_type": "application/octet-stream", "payload_content_encoding": "base64"})
	e.must(http.StatusCreated, "PUT", "/v1/secrets/"+img+"/metadata", map[string]any{"metadata": map[string]string{
		"os_encrypt_key_deletion_policy": "on_image_deletion", "os_encrypt_format": "luks", "os_decrypt_size": "1073741824"}})
	e.must(http.StatusOK, "POST", "/v1/secrets/"+img+"/consumers", consumer("image", "image", "img-1"))

	r := e.must(http.StatusCreated, "POST", "/v1/secrets/"+img+"/clone", map[string]any{
		"name": "volume key", "consumer": consumer("volume", "volume", "vol-1"),
		"metadata": map[string]string{"os_encrypt_key_id": img}})
	m := r.JSON(t)
	vol := idOfRef(t, m["secret_ref"].(string))
	if vol == img || r.Header.Get("Location") != m["secret_ref"] || idOfRef(t, m["cloned_from"].(string)) != img {
		t.Fatalf("clone answer %s", r.Body)
	}
	sec := e.must(http.StatusOK, "GET", "/v1/secrets/"+vol, nil).JSON(t)
	if sec["name"] != "volume key" || sec["secret_type"] != "symmetric" || sec["bit_length"] != 512.0 {
		t.Fatalf("clone %v", sec)
	}
	lc := e.must(http.StatusOK, "GET", "/v1/secrets/"+vol+"/lifecycle", nil).JSON(t)
	cs := lc["consumers"].([]any)
	if idOfRef(t, lc["cloned_from"].(string)) != img || lc["deletion_policy"] != "retain" || len(cs) != 1 ||
		cs[0].(map[string]any)["resource_id"] != "vol-1" || lc["encryption"].(map[string]any)["format"] != "luks1" {
		t.Fatalf("lifecycle %v", lc)
	}
	meta := e.must(http.StatusOK, "GET", "/v1/secrets/"+vol+"/metadata", nil).JSON(t)["metadata"].(map[string]any)
	if meta["os_decrypt_size"] != "1073741824" || meta["os_encrypt_key_deletion_policy"] != nil {
		t.Fatalf("clone metadata %v", meta)
	}
	octet := []string{"Accept", "application/octet-stream"}
	if got := e.must(http.StatusOK, "GET", "/v1/secrets/"+vol+"/payload", nil, octet...).Body; !bytes.Equal(got, key) {
		t.Fatal("clone material differs")
	}
	// Glance deletes the image: its consumer goes, and with it the image key.
	r = e.must(http.StatusOK, "DELETE", "/v1/secrets/"+img+"/consumers", consumer("image", "image", "img-1"))
	if r.Header.Get(destroyedHeader) != "true" {
		t.Fatal("image key not destroyed")
	}
	checkError(t, e.do("GET", "/v1/secrets/"+img+"/payload", nil, octet...), http.StatusNotFound)
	if got := e.must(http.StatusOK, "GET", "/v1/secrets/"+vol+"/payload", nil, octet...).Body; !bytes.Equal(got, key) {
		t.Fatal("volume key lost with the image")
	}
}

func TestCloneRefusals(t *testing.T) {
	e := newEnv(t)
	src := e.createText("k", "v")
	path := "/v1/secrets/" + src + "/clone"
	checkError(t, e.do("POST", path, map[string]any{"payload": "x"}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, map[string]any{"consumer": map[string]any{"service": "volume"}}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, map[string]any{"deletion_policy": "sometimes"}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, map[string]any{"metadata": map[string]any{"os_encrypt_key_id": "other"}}), http.StatusBadRequest)
	checkError(t, e.do("POST", path, map[string]any{"project": "p2"}, "X-Roles", "creator"), http.StatusForbidden)
	checkError(t, e.do("POST", path, map[string]any{}, "X-Roles", "audit"), http.StatusForbidden)
	checkError(t, e.do("POST", path, map[string]any{}, "X-Project-Id", "p2"), http.StatusForbidden)
	checkError(t, e.do("POST", path, "{}", "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	empty := e.createSecret(map[string]any{"name": "no payload"})
	checkError(t, e.do("POST", "/v1/secrets/"+empty+"/clone", map[string]any{}), http.StatusConflict)
	checkError(t, e.do("GET", "/v1/secrets/"+src+"/lifecycle", nil, "X-Project-Id", "p2"), http.StatusForbidden)

	// A service of another project never clones into a third (issue 8 #2),
	// even allowed to read the source; acting for p2 with p2's token, it
	// clones into p2.
	e.must(http.StatusOK, "PUT", "/v1/secrets/"+src+"/acl", map[string]any{"read": map[string]any{"users": []string{"cinder"}}})
	foreign := []string{"X-Project-Id", "service", "X-User-Id", "cinder", "X-Roles", "service,admin"}
	checkError(t, e.do("POST", path, map[string]any{"project": "p2"}, foreign...), http.StatusForbidden)
	if m := e.must(http.StatusOK, "GET", "/v1/secrets", nil, "X-Project-Id", "p2").JSON(t); m["total"] != 0.0 {
		t.Fatalf("a refused clone left secrets in p2: %v", m)
	}
	svc := []string{"X-Project-Id", "p2", "X-User-Id", "cinder", "X-Roles", "creator"}
	r := e.must(http.StatusCreated, "POST", path, map[string]any{"project": "p2", "deletion_policy": "on_image_deletion"}, svc...)
	cl := idOfRef(t, r.JSON(t)["secret_ref"].(string))
	if got := e.must(http.StatusOK, "GET", "/v1/secrets/"+cl+"/payload", nil, "X-Project-Id", "p2").Body; string(got) != "v" {
		t.Fatalf("p2 reads %q", got)
	}
	lc := e.must(http.StatusOK, "GET", "/v1/secrets/"+cl+"/lifecycle", nil, svc...).JSON(t)
	if lc["project"] != "p2" || lc["deletion_policy"] != "on_last_consumer" {
		t.Fatalf("lifecycle %v", lc)
	}
	checkError(t, e.do("GET", "/v1/secrets/"+cl, nil), http.StatusForbidden) // p1 does not own it
}

// Flow 4 over HTTP: 50 concurrent add-consumer, delete and clone calls on
// one secret.
func TestConcurrentConsumersDeleteCloneHTTP(t *testing.T) {
	e := newEnv(t)
	for round := range 3 {
		id := e.createText(fmt.Sprint("race-", round), "material")
		var (
			wg                   sync.WaitGroup
			mu                   sync.Mutex
			adds, deletes, clone int
			clones               []string
		)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r resp
				switch i % 3 {
				case 0:
					r = e.do("POST", "/v1/secrets/"+id+"/consumers", consumer("compute", "instance", fmt.Sprint("vm-", i)))
				case 1:
					r = e.do("DELETE", "/v1/secrets/"+id, nil)
				case 2:
					r = e.do("POST", "/v1/secrets/"+id+"/clone", map[string]any{"consumer": consumer("volume", "volume", fmt.Sprint("v-", i))})
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case i%3 == 0 && r.Status == http.StatusOK:
					adds++
				case i%3 == 1 && r.Status == http.StatusNoContent:
					deletes++
				case i%3 == 2 && r.Status == http.StatusCreated:
					clone++
					var ref string
					if m := r.JSON(t); m != nil {
						ref, _ = m["secret_ref"].(string)
					}
					clones = append(clones, ref)
				case r.Status == http.StatusNotFound, i%3 == 1 && r.Status == http.StatusConflict:
				default:
					t.Errorf("call %d: %d %s", i, r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		got := e.do("GET", "/v1/secrets/"+id, nil, "OpenStack-API-Version", mv11)
		switch {
		case deletes > 1, deletes == 1 && adds > 0:
			t.Fatalf("round %d: %d deletes with %d consumers added", round, deletes, adds)
		case deletes == 1:
			checkError(t, got, http.StatusNotFound)
		case got.Status != http.StatusOK:
			t.Fatalf("round %d: secret lost: %s", round, got.Body)
		default:
			if cs, _ := got.JSON(t)["consumers"].([]any); len(cs) != adds {
				t.Fatalf("round %d: %d consumers, %d adds", round, len(cs), adds)
			}
		}
		for _, ref := range clones {
			body := e.must(http.StatusOK, "GET", strings.TrimPrefix(ref, e.url)+"/payload", nil).Body
			if string(body) != "material" {
				t.Fatalf("clone %s holds %q", ref, body)
			}
		}
		t.Logf("round %d: %d adds, %d deletes, %d clones", round, adds, deletes, clone)
	}
}
