"""scripts/download-models against a real HTTP server on loopback: verified downloads, a checksum
mismatch, transfers that break off and resume with a Range request, idempotence, an unreachable
host, unpinned files, and the pins scripts/fetch-test-models reads.

Run: python3 -m unittest discover -s tests/scripts -v
"""

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "download-models"


class Server(http.server.ThreadingHTTPServer):
    """Serves `files` (path -> bytes) with Range support. `drop_after[path] = n` makes the next
    GET of path send n bytes of the body and then close the connection. Requests are recorded."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.drop_after, self.requests = {}, {}, []
        self.ranges = True
        self.lock = threading.Lock()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, self.headers.get("Range")))
            drop = srv.drop_after.pop(self.path, None)
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        payload = body[start:]
        if drop is not None:
            self.wfile.write(payload[:drop])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(payload)


def sha(data):
    return hashlib.sha256(data).hexdigest()


class DownloadModelsTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.dest = self.root / "models"
        # A few MB so that a transfer spans several reads.
        self.stt = os.urandom(2_500_000)
        self.llm = os.urandom(1_300_000)
        self.voice = os.urandom(700_000)
        self.voice_json = b'{"language": {"code": "ru_RU"}, "espeak": {"voice": "ru"}}'
        for path, data in [("/stt.bin", self.stt), ("/llm.gguf", self.llm),
                           ("/v.onnx", self.voice), ("/v.onnx.json", self.voice_json)]:
            self.server.files[path] = data

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.tmp.cleanup()

    def manifest(self, **overrides):
        """Writes a one-set manifest; overrides[name] replaces fields of that file's entry."""
        entries = [
            dict(name="stt.bin", role="stt", language="multilingual", url=self.server.url("/stt.bin"),
                 size=len(self.stt), sha256=sha(self.stt)),
            dict(name="llm.gguf", role="llm", language="ru, en", url=self.server.url("/llm.gguf"),
                 size=len(self.llm), sha256=sha(self.llm)),
            dict(name="v.onnx", role="voice", language="ru_RU", url=self.server.url("/v.onnx"),
                 size=len(self.voice), sha256=sha(self.voice)),
            dict(name="v.onnx.json", role="voice_config", language="ru_RU",
                 url=self.server.url("/v.onnx.json"), size=len(self.voice_json),
                 sha256=sha(self.voice_json)),
        ]
        lines = ['[sets.demo]', 'description = "a demo set"',
                 '[sets.demo.config.stt]', 'language = "ru"',
                 '[sets.demo.config.conversation]', 'greeting = "Здравствуйте!"']
        for e in entries:
            e.update(overrides.get(e["name"], {}))
            lines.append("[[sets.demo.files]]")
            lines += [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in e.items()]
        path = self.root / "manifest.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def run_script(self, *args, manifest=None):
        cmd = [sys.executable, str(SCRIPT), "--manifest", str(manifest or self.manifest()),
               "--set", "demo", "--dir", str(self.dest), "--timeout", "10", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def assert_complete(self):
        self.assertEqual((self.dest / "stt.bin").read_bytes(), self.stt)
        self.assertEqual((self.dest / "llm.gguf").read_bytes(), self.llm)
        self.assertEqual((self.dest / "v.onnx").read_bytes(), self.voice)
        self.assertEqual([p.name for p in self.dest.glob("*.part")], [])
        sums = (self.dest / "SHA256SUMS").read_text()
        self.assertIn(f"{sha(self.stt)}  stt.bin\n", sums)
        self.assertIn(f"{sha(self.voice_json)}  v.onnx.json\n", sums)
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=self.dest, capture_output=True)
        self.assertEqual(check.returncode, 0, check.stdout)

    def test_verified_download_writes_sums_and_config_then_second_run_downloads_nothing(self):
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_complete()
        self.assertIn("4 file(s) downloaded", r.stderr)
        self.assertIn("100%", r.stderr)  # progress
        cfg = tomllib.loads((self.dest / "voxd-models.toml").read_text())
        self.assertEqual(cfg["models"], {
            "stt": str(self.dest.resolve() / "stt.bin"),
            "llm": str(self.dest.resolve() / "llm.gguf"),
            "voice": str(self.dest.resolve() / "v.onnx"),
        })
        self.assertEqual(cfg["stt"], {"language": "ru"})
        self.assertEqual(cfg["conversation"], {"greeting": "Здравствуйте!"})
        self.assertTrue((self.dest / "manifest.toml").is_file())

        before = len(self.server.requests)
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.server.requests), before, "the second run made requests")
        self.assertIn("0 file(s) downloaded, 4 already present", r.stderr)
        self.assert_complete()

    def test_checksum_mismatch_deletes_the_file_and_fails_loudly(self):
        wrong = sha(b"something else")
        r = self.run_script(manifest=self.manifest(**{"llm.gguf": {"sha256": wrong}}))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("CHECKSUM MISMATCH for llm.gguf", r.stderr)
        self.assertIn(f"expected sha256 {wrong}", r.stderr)
        self.assertIn(f"got             {sha(self.llm)}", r.stderr)
        self.assertFalse((self.dest / "llm.gguf").exists())
        self.assertFalse((self.dest / "llm.gguf.part").exists())
        self.assertFalse((self.dest / "SHA256SUMS").exists())

    def test_a_present_file_that_was_altered_is_downloaded_again(self):
        self.assertEqual(self.run_script().returncode, 0)
        corrupt = bytearray(self.stt)
        corrupt[1000] ^= 0xFF
        (self.dest / "stt.bin").write_bytes(corrupt)
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stt.bin: present but not the pinned file", r.stderr)
        self.assertIn("1 file(s) downloaded", r.stderr)
        self.assert_complete()

    def test_a_transfer_that_breaks_off_resumes_with_a_range_request(self):
        half = len(self.stt) // 2
        self.server.drop_after["/stt.bin"] = half
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("resuming", r.stderr)
        stt_requests = [rng for path, rng in self.server.requests if path == "/stt.bin"]
        self.assertEqual(stt_requests, [None, f"bytes={half}-"])
        self.assert_complete()

    def test_an_interrupted_run_leaves_a_part_file_that_the_next_run_resumes(self):
        cut = 1_000_000
        self.server.drop_after["/stt.bin"] = cut
        r = self.run_script("--retries", "0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("run this again to resume", r.stderr)
        self.assertEqual((self.dest / "stt.bin.part").stat().st_size, cut)
        self.assertFalse((self.dest / "stt.bin").exists())

        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("resuming stt.bin at", r.stderr)
        self.assertEqual(self.server.requests[-4:][0], ("/stt.bin", f"bytes={cut}-"))
        self.assert_complete()

    def test_a_server_without_range_support_restarts_the_file(self):
        self.server.ranges = False
        self.server.drop_after["/stt.bin"] = 400_000
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_complete()

    def test_unreachable_server_fails_with_a_clear_message(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again below: nothing listens there
        dead = f"http://127.0.0.1:{port}/stt.bin"
        r = self.run_script(manifest=self.manifest(**{"stt.bin": {"url": dead}}))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"cannot reach 127.0.0.1:{port}", r.stderr)
        self.assertIn("Is this machine online", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertFalse((self.dest / "stt.bin").exists())

    def test_http_errors_are_reported(self):
        r = self.run_script(manifest=self.manifest(**{"v.onnx": {"url": self.server.url("/gone")}}))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("HTTP 404", r.stderr)

    def test_unpinned_files_are_refused_unless_allowed(self):
        manifest = self.manifest(**{"llm.gguf": {"sha256": ""}})
        r = self.run_script(manifest=manifest)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("llm.gguf has no pinned sha256", r.stderr)
        self.assertIn("--allow-unpinned", r.stderr)
        self.assertNotIn("/llm.gguf", [p for p, _ in self.server.requests])

        r = self.run_script("--allow-unpinned", manifest=manifest)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"not pinned in the manifest; its sha256 is {sha(self.llm)}", r.stderr)
        self.assert_complete()

    def test_list_and_unknown_set(self):
        manifest = self.manifest()
        r = subprocess.run([sys.executable, str(SCRIPT), "--manifest", str(manifest), "--list"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("demo", r.stdout)
        self.assertIn("a demo set", r.stdout)
        r = subprocess.run([sys.executable, str(SCRIPT), "--manifest", str(manifest), "--set", "nope"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no model set 'nope'", r.stderr)


class RepositoryManifestTest(unittest.TestCase):
    """The real manifest: every production set is complete and pinned, and the test set's pins
    are the ones scripts/fetch-test-models enforces."""

    def setUp(self):
        with open(REPO / "models" / "manifest.toml", "rb") as f:
            self.sets = tomllib.load(f)["sets"]

    def test_production_sets_are_complete_and_pinned(self):
        for name in ["ru-cpu", "ru-gpu", "en-cpu"]:
            files = self.sets[name]["files"]
            roles = {f["role"] for f in files}
            self.assertTrue({"stt", "llm", "voice", "voice_config", "turn"} <= roles, name)
            for f in files:
                self.assertRegex(f["sha256"], "^[0-9a-f]{64}$", f["name"])
                self.assertGreater(f["size"], 1000, f["name"])
                self.assertTrue(f["url"].startswith("https://"), f["name"])
                self.assertTrue(f["url"].endswith("/" + f["name"]), f["name"])
                self.assertTrue(f.get("checksum_source"), f["name"])
                # A pinned revision, never a moving branch (the sha256 must stay valid).
                self.assertNotIn("/resolve/main/", f["url"], f["name"])
                self.assertRegex(f["url"], "/resolve/[0-9a-f]{40}/", f["name"])
                # Licences a company may use on its phone line: no research-only or
                # non-commercial model in a production set.
                self.assertRegex(f.get("licence", ""), r"^(MIT|Apache-2\.0|CC0-1\.0|BSD-2-Clause)\b",
                                 f["name"])
        self.assertEqual(self.sets["ru-cpu"]["config"]["stt"]["language"], "ru")

    def test_set_config_keys_are_voxd_config_keys(self):
        # voxd rejects unknown keys, and scripts/install fills these into the example config.
        with open(REPO / "voxd.example.toml", "rb") as f:
            example = tomllib.load(f)
        for name, spec in self.sets.items():
            for section, keys in spec.get("config", {}).items():
                for key, value in keys.items():
                    self.assertIn(key, example.get(section, {}), f"{name}: [{section}] {key}")
                    self.assertIsInstance(value, type(example[section][key]), f"{name}: {key}")

    def test_fetch_test_models_pins_come_from_the_manifest(self):
        out = subprocess.run([sys.executable, str(SCRIPT), "--print-sums", "test"],
                             capture_output=True, text=True, check=True).stdout
        sums = REPO / "models" / "test" / "SHA256SUMS"
        if sums.exists():  # present once scripts/fetch-test-models has run (scripts/test runs it first)
            self.assertEqual(out, sums.read_text())
        wheels = subprocess.run([sys.executable, str(SCRIPT), "--print-wheels", "test"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
        self.assertEqual(len(wheels), 7)
        self.assertTrue(all(len(w.split("\t")[1]) == 64 for w in wheels))


if __name__ == "__main__":
    unittest.main()
