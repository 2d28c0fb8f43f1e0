#!/usr/bin/env python3
# A loopback stand-in for the Hugging Face hub's HTTP API, for Hone's hub tests and download bench.
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Serves ROOT/models/ORG/NAME/** and ROOT/datasets/ORG/NAME/** as repos with one commit each
# (branch "main"), the way the hub answers (https://huggingface.co/docs/hub/api):
#   GET  /api/models/ORG/NAME/revision/REV?blobs=true   {"sha", "siblings": [{"rfilename", "size",
#        "blobId", "lfs": {"sha256", "size"}}], "gated"}; /api/datasets/... likewise
#   GET  /api/models?search=Q&limit=N&config=true        [{"id", "downloads", "config": {"model_type"}}]
#   HEAD/GET /ORG/NAME/resolve/REV/PATH (and /datasets/...): small files answer 200 with ETag = git
#        blob sha1; LFS files (*.safetensors, *.parquet, *.bin, >= 64 KiB) answer 302 to /cdn/SHA256
#        with X-Linked-Etag / X-Linked-Size; every answer carries X-Repo-Commit.
#   GET  /cdn/SHA256                                     the bytes, with Range support
# Repos under the org "gated" need "Authorization: Bearer hf_good" (401 without a token, 403 with
# another). Faults, each by file name: --drop NAME (the first GET closes half-way), --stall NAME
# (the first GET stops half-way and waits 120 s), --corrupt NAME (one byte always flipped).
# Every request is logged as a JSON line (method, path, range) to --log.
import argparse, hashlib, http.server, json, os, socketserver, sys, threading, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", default="")
ap.add_argument("--drop", action="append", default=[])
ap.add_argument("--stall", action="append", default=[])
ap.add_argument("--corrupt", action="append", default=[])
args = ap.parse_args()

lock = threading.Lock()
faults_used = set()
repos = {}   # ("model"|"dataset", "ORG/NAME") -> {"sha", "files": {path: info}}
by_sha = {}  # sha256 -> absolute path


def is_lfs(path, size):
    return path.endswith((".safetensors", ".parquet", ".bin", ".gguf")) or size >= 65536


def scan():
    for kind, sub in (("model", "models"), ("dataset", "datasets")):
        base = os.path.join(args.root, sub)
        if not os.path.isdir(base):
            continue
        for org in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, org))):
                top = os.path.join(base, org, name)
                files = {}
                for d, _, fs in os.walk(top):
                    for f in fs:
                        full = os.path.join(d, f)
                        rel = os.path.relpath(full, top)
                        data = open(full, "rb").read()
                        info = {"full": full, "size": len(data),
                                "sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
                        if is_lfs(rel, len(data)):
                            info["sha256"] = hashlib.sha256(data).hexdigest()
                            by_sha[info["sha256"]] = full
                        files[rel] = info
                h = hashlib.sha1()
                for rel in sorted(files):
                    h.update((rel + files[rel]["sha1"]).encode())
                repos[(kind, org + "/" + name)] = {"sha": h.hexdigest(), "files": files, "dir": top}


scan()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def log(self):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "range": self.headers.get("Range", ""),
                                    "auth": bool(self.headers.get("Authorization"))}) + "\n")

    def send(self, code, body=b"", headers=None, ctype="application/json"):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, msg):
        self.send(code, json.dumps({"error": msg}).encode(), {"X-Error-Message": msg})

    def auth_ok(self, repo_id):
        if not repo_id.startswith("gated/"):
            return True
        tok = self.headers.get("Authorization", "")
        if not tok:
            self.error(401, "Access to model %s is restricted. You must be authenticated." % repo_id)
            return False
        if tok != "Bearer hf_good":
            self.error(403, "Access to model %s is restricted and you are not in the authorized list." % repo_id)
            return False
        return True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log()
        u = urllib.parse.urlparse(self.path)
        parts = [urllib.parse.unquote(p) for p in u.path.split("/")[1:]]
        q = urllib.parse.parse_qs(u.query)
        if parts[:2] == ["api", "models"] and len(parts) == 2:
            return self.search(q)
        if parts[0] == "api" and len(parts) >= 6 and parts[1] in ("models", "datasets") and parts[4] == "revision":
            kind = "model" if parts[1] == "models" else "dataset"
            return self.info(kind, parts[2] + "/" + parts[3], "/".join(parts[5:]))
        if parts[0] == "cdn" and len(parts) == 2:
            return self.cdn(parts[1])
        kind = "model"
        if parts[0] == "datasets":
            kind, parts = "dataset", parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(kind, parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
        self.error(404, "not found")

    def repo(self, kind, rid, rev):
        r = repos.get((kind, rid))
        if r is None:
            self.error(404, "Repository not found")
            return None
        if rev not in ("main", r["sha"]):
            self.error(404, "Revision not found")
            return None
        return r

    def info(self, kind, rid, rev):
        r = self.repo(kind, rid, rev)
        if r is None:
            return
        sib = []
        for rel in sorted(r["files"]):
            i = r["files"][rel]
            e = {"rfilename": rel, "size": i["size"], "blobId": i["sha1"]}
            if "sha256" in i:
                e["lfs"] = {"sha256": i["sha256"], "size": i["size"], "pointerSize": 134}
            sib.append(e)
        body = {"id": rid, "sha": r["sha"], "siblings": sib, "gated": "manual" if rid.startswith("gated/") else False}
        self.send(200, json.dumps(body).encode())

    def search(self, q):
        words = q.get("search", [""])[0].lower()
        limit = int(q.get("limit", ["20"])[0])
        out = []
        for (kind, rid), r in sorted(repos.items()):
            if kind != "model" or words not in rid.lower():
                continue
            e = {"id": rid, "modelId": rid, "downloads": len(rid) * 100, "likes": 1, "pipeline_tag": "text-generation",
                 "gated": False, "lastModified": "2026-11-30T10:00:00.000Z"}
            cfg = os.path.join(r["dir"], "config.json")
            if q.get("config", [""])[0] in ("true", "1") and os.path.exists(cfg):
                e["config"] = {"model_type": json.load(open(cfg)).get("model_type", "")}
            out.append(e)
        self.send(200, json.dumps(out[:limit]).encode())

    def resolve(self, kind, rid, rev, path):
        if not self.auth_ok(rid):
            return
        r = self.repo(kind, rid, rev)
        if r is None:
            return
        i = r["files"].get(path)
        if i is None:
            return self.error(404, "Entry not found")
        h = {"X-Repo-Commit": r["sha"]}
        if "sha256" in i:
            h.update({"X-Linked-Etag": '"%s"' % i["sha256"], "X-Linked-Size": str(i["size"]), "ETag": '"%s"' % i["sha1"],
                      "Location": "/cdn/%s?name=%s" % (i["sha256"], urllib.parse.quote(os.path.basename(path)))})
            return self.send(302, b"", h)
        h["ETag"] = '"%s"' % i["sha1"]
        self.body(i["full"], os.path.basename(path), h)

    def cdn(self, sha):
        full = by_sha.get(sha)
        if full is None:
            return self.error(404, "no such object")
        self.body(full, os.path.basename(full), {"ETag": '"%s"' % sha})

    def body(self, full, name, headers):
        size = os.path.getsize(full)
        start, code = 0, 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= size:
                return self.send(416, b"", {"Content-Range": "bytes */%d" % size})
            code = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, size - 1, size)
        count = size - start
        fault = None
        with lock:
            for kind in ("drop", "stall"):
                if name in getattr(args, kind) and (kind, name) not in faults_used and self.command == "GET":
                    faults_used.add((kind, name))
                    fault = kind
        corrupt = name in args.corrupt
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(count))
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(full, "rb") as f:
            if fault or corrupt:
                f.seek(start)
                data = bytearray(f.read(count))
                if corrupt and data:
                    data[len(data) // 2] ^= 0x5A
                if fault:
                    half = max(1, size // 2 - start)
                    self.wfile.write(bytes(data[:half]))
                    self.wfile.flush()
                    if fault == "stall":
                        time.sleep(120)
                    self.close_connection = True
                    return
                self.wfile.write(bytes(data))
                return
            # Plain case: the kernel copies the file (the bench measures the client, not Python).
            self.wfile.flush()
            off, left = start, count
            while left > 0:
                n = os.sendfile(self.connection.fileno(), f.fileno(), off, min(left, 1 << 24))
                if n == 0:
                    break
                off += n
                left -= n


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Handler)
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, args.port_file)
srv.serve_forever()
