"""The `perfsuite` command: init writes a working setup and never overwrites; cache shows and
clears only what perfsuite made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perfsuite.backends import BACKEND_TYPES
from perfsuite.cli import main
from perfsuite.config.settings import load_config
from perfsuite.models.artifacts import ArtifactCache


def test_init_writes_a_configuration_the_suite_loads(tmp_path, capsys):
    assert main(["--rootdir", str(tmp_path), "init", "--factory", "acme:build",
                 "--input-shape", "1,3,64,64"]) == 0
    config = load_config(tmp_path, list(BACKEND_TYPES), environ={})
    assert config.configured and [m.name for m in config.models] == ["acme"], "the module's name"
    assert config.models[0].factory == "acme:build" and config.models[0].input_shape == (1, 3, 64, 64)
    workflow = (tmp_path / ".github" / "workflows" / "perfsuite.yml").read_text()
    assert "--benchmark-compare" in workflow and '--perf-ab="origin/$BASE_REF"' in workflow
    assert "branches: [main]" in workflow, "no git repository: main"
    assert "wrote" in capsys.readouterr().out


def test_init_names_a_dotted_factory_after_its_last_module(tmp_path):
    assert main(["--rootdir", str(tmp_path), "init", "--no-workflow", "--factory",
                 "acme.vision.nets:build"]) == 0
    assert load_config(tmp_path, list(BACKEND_TYPES), environ={}).models[0].name == "nets"


def test_init_writes_the_precisions_this_machine_computes_natively(tmp_path, monkeypatch):
    import perfsuite.init_command

    fake = tmp_path / "sys"
    (fake / "proc").mkdir(parents=True)
    (fake / "proc/cpuinfo").write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    monkeypatch.setenv("PERFSUITE_SYSFS_ROOT", str(fake))
    monkeypatch.setattr(perfsuite.init_command, "cuda_capability", lambda: None)
    repo = tmp_path / "repo"
    repo.mkdir()
    assert main(["--rootdir", str(repo), "init", "--no-workflow"]) == 0
    text = (repo / "pyproject.toml").read_text()
    assert 'precisions = ["fp32"]  # what this CPU computes natively; fp16 and bf16 would be ' \
           'emulated (slow): add them to time them anyway' in text
    (fake / "proc/cpuinfo").write_text("flags : avx512f avx512_bf16 amx_bf16\n")
    (repo / "pyproject.toml").unlink()
    assert main(["--rootdir", str(repo), "init", "--no-workflow"]) == 0
    assert load_config(repo, list(BACKEND_TYPES), environ={}).precisions == ("fp32", "bf16")


def test_the_workflow_follows_the_repositorys_default_branch(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "master", str(tmp_path)], check=True)
    assert main(["--rootdir", str(tmp_path), "init"]) == 0
    workflow = (tmp_path / ".github" / "workflows" / "perfsuite.yml").read_text()
    assert "branches: [master]" in workflow and "Pushes to master" in workflow


def test_init_adds_to_an_existing_pyproject_and_keeps_it(tmp_path):
    original = '[project]\nname = "acme"\nversion = "1"\n\n[tool.black]\nline-length = 100'
    (tmp_path / "pyproject.toml").write_text(original)
    assert main(["--rootdir", str(tmp_path), "init", "--no-workflow"]) == 0
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(original + "\n")
    assert load_config(tmp_path, list(BACKEND_TYPES), environ={}).models[0].torchvision == \
        "mobilenet_v3_small"
    assert not (tmp_path / ".github").exists()


@pytest.mark.parametrize("existing", ["pyproject", "workflow", "broken"])
def test_init_never_overwrites(tmp_path, capsys, existing):
    files = {
        "pyproject": (tmp_path / "pyproject.toml", "[tool.perfsuite]\ndevice = 'cpu'\n"),
        "workflow": (tmp_path / ".github" / "workflows" / "perfsuite.yml", "name: mine\n"),
        "broken": (tmp_path / "pyproject.toml", "[project\nname = 1\n"),
    }
    path, content = files[existing]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    assert main(["--rootdir", str(tmp_path), "init"]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "Remedy" in error
    assert path.read_text() == content
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


def test_bad_arguments_are_named(tmp_path, capsys):
    assert main(["--rootdir", str(tmp_path / "missing"), "cache"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["--rootdir", str(tmp_path), "init", "--input-shape", "1,3,0"]) == 2
    assert "--input-shape '1,3,0'" in capsys.readouterr().err
    assert main(["--rootdir", str(tmp_path), "init", "--factory", "nocolon"]) == 2
    assert not (tmp_path / "pyproject.toml").exists()


def test_cache_shows_and_clears_only_perfsuite_entries(tmp_path, monkeypatch, capsys):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("PERFSUITE_CACHE_DIR", str(cache_dir))
    cache = ArtifactCache(cache_dir)
    for name in ("a", "b"):
        cache.get_or_build("onnx", name, {"k": name},
                           lambda d: (d / "model.onnx").write_bytes(b"x" * 3000))
    keep = cache_dir / "onnx" / "notes.txt"
    keep.write_text("mine")
    mine = cache_dir / "mine"
    mine.mkdir()
    (mine / "data.bin").write_bytes(b"y")
    assert main(["--rootdir", str(tmp_path), "cache"]) == 0
    shown = capsys.readouterr().out
    assert str(cache_dir) in shown and "onnx" in shown and "2 entries" in shown and "6.0 kB" in shown
    assert "mine" not in shown
    assert main(["--rootdir", str(tmp_path), "cache", "--clear"]) == 0
    assert not list((cache_dir / "onnx").glob("a-*")) and not list((cache_dir / "onnx").glob("b-*"))
    assert keep.read_text() == "mine" and (mine / "data.bin").exists()
    assert (cache_dir / ".gitignore").exists()


def test_the_console_script_is_installed():
    script = Path(sys.executable).with_name("perfsuite")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "init" in done.stdout and "cache" in done.stdout
