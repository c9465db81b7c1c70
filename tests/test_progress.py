"""Progress of long work (``jmvae.progress``): a bar on a terminal, a line a minute in a log."""

from __future__ import annotations

import io
import subprocess
import sys
from types import SimpleNamespace

from tqdm.auto import tqdm

from jmvae import progress as progress_module
from jmvae.progress import LineBar, ProgressLines, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fake_clock(monkeypatch) -> list[float]:
    """The progress module's clock reads ``now[0]`` (the rest of the process keeps the real one)."""
    now = [0.0]
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_workers_report_steps_per_second_and_the_time_left(monkeypatch):
    """A worker process trains without a bar: a line every minute instead."""
    clock = iter([0.0, 30.0, 60.0, 90.0, 125.0])
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    lines: list[str] = []
    progress = ProgressLines("vae", 100, 1100, lines.append, every=60.0)
    progress(150)  # 30 s in: too soon
    progress(300)  # 60 s in: 200 steps in 60 s, 800 to go
    progress(350)  # 90 s: 30 s since the last line
    progress(600)  # 125 s: 500 steps in 125 s = 4 steps/s, 500 to go
    assert lines == ["[vae] step 300/1100, 3.3 steps/s, about 4 min left",
                     "[vae] step 600/1100, 4.0 steps/s, about 2 min left"]


def test_the_rate_follows_the_last_minutes_when_the_load_changes(monkeypatch):
    """A job beside the worker halves its speed for 20 minutes, then ends: the rate and the time
    left are those of the last ``window`` seconds, not of the whole run; a stalled run says so."""
    now = fake_clock(monkeypatch)
    lines: list[str] = []
    progress = ProgressLines("cvae", 0, 100_000, lines.append, every=60.0, window=600.0)
    step = 0
    for minute in range(1, 31):  # 20 steps/s for 20 minutes, then 40
        now[0] = 60.0 * minute
        step += 60 * (20 if minute <= 20 else 40)
        progress(step)
    assert len(lines) == 30
    assert lines[9] == "[cvae] step 12000/100000, 20.0 steps/s, about 73 min left"  # 10 min in: since the start
    assert lines[24] == "[cvae] step 36000/100000, 30.0 steps/s, about 36 min left"  # half of the window at 40
    assert lines[29] == "[cvae] step 48000/100000, 40.0 steps/s, about 22 min left"  # since the start: 26.7 steps/s
    for minute in range(31, 42):  # stalled for 11 minutes
        now[0] = 60.0 * minute
        progress(step)
    assert lines[-1] == "[cvae] step 48000/100000, 0.0 steps/s, no step lately"


def test_a_log_file_gets_a_line_a_minute_with_the_epoch_and_loss_not_a_redrawn_bar(monkeypatch):
    """Output that is not a terminal (a log file, a pipe) gets whole lines, each with the bar's
    postfix; nothing is redrawn with carriage returns."""
    now = fake_clock(monkeypatch)
    log = io.StringIO()
    bar = progress_bar(total=3000, initial=1000, stream=log)
    assert isinstance(bar, LineBar)
    bar.set_postfix(epoch=3, loss="91.25")
    for second in range(1, 121):  # 10 steps a second for two minutes
        now[0] = float(second)
        bar.update(10)
    bar.close()
    assert log.getvalue().splitlines() == [
        "step 1600/3000, 10.0 steps/s, about 2 min left (epoch 3, loss 91.25)",
        "step 2200/3000, 10.0 steps/s, about 1 min left (epoch 3, loss 91.25)",
    ]
    assert "\r" not in log.getvalue()


def test_a_loop_over_batches_counts_them_and_yields_every_one(monkeypatch):
    """Iterating a ``LineBar`` yields every item and counts each after it is done; a slow rate
    keeps two significant digits."""
    now = fake_clock(monkeypatch)
    log = io.StringIO()
    seen = []
    for item in progress_bar(range(200), unit="batch", desc="evaluate vae", stream=log):  # one a second
        now[0] += 1.0
        seen.append(item)
    assert seen == list(range(200))
    assert log.getvalue().splitlines() == ["[evaluate vae] batch 60/200, 1.0 batches/s, about 2 min left",
                                           "[evaluate vae] batch 120/200, 1.0 batches/s, about 1 min left",
                                           "[evaluate vae] batch 180/200, 1.0 batches/s, about 0 min left"]
    slow = io.StringIO()
    bar = progress_bar(total=100, unit="batch", stream=slow)
    now[0] += 130.0
    bar.update(7)  # 7 batches in 130 s
    assert slow.getvalue() == "batch 7/100, 0.054 batches/s, about 29 min left\n"


WRITER = """
import sys
from jmvae.progress import write_line
print("ready", flush=True)
sys.stdin.readline()  # both writers start together, imports done
for i in range(LINES):
    write_line(f"[{sys.argv[1]}] line {i} " + "x" * 60)
"""
LINES = 20_000


def test_processes_sharing_a_log_never_split_each_others_lines(tmp_path):
    """``jmvae reproduce --jobs 2``'s workers and their parent write to one log file (the shell's
    redirection, one open file for all three). Each line is one write, so no line of one process
    ends inside another's. With ``print`` (the text, then the newline: two writes) most lines of two
    such writers came out split."""
    log = tmp_path / "log"
    code = WRITER.replace("LINES", str(LINES))
    with log.open("w") as shared:
        writers = [subprocess.Popen([sys.executable, "-c", code, tag], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=shared, text=True) for tag in ("a", "b")]
        for writer in writers:
            assert writer.stdout.readline() == "ready\n"
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
        for writer in writers:
            writer.stdin.close()
            writer.stdout.close()
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * LINES
    for tag in ("a", "b"):
        assert [line for line in lines if line.startswith(f"[{tag}]")] == [f"[{tag}] line {i} " + "x" * 60
                                                                           for i in range(LINES)]


def test_a_terminal_gets_tqdm_and_a_disabled_bar_writes_nothing():
    terminal = Terminal()
    bar = progress_bar(total=10, stream=terminal)
    assert isinstance(bar, tqdm)
    bar.update(5)
    bar.close()
    assert "5/10" in terminal.getvalue()
    quiet = io.StringIO()
    for enabled_stream in (quiet, Terminal()):
        off = progress_bar(total=10, enabled=False, stream=enabled_stream)
        off.update(10)
        off.close()
        assert enabled_stream.getvalue() == ""


def test_training_into_a_log_draws_no_bar(digits, capsys):
    """``train(progress=True)`` with standard error captured (as ``nohup`` or a scheduler would):
    no carriage return reaches it."""
    from helpers import tiny_config, tiny_train

    from jmvae.training import train

    train(tiny_config(digits), tiny_train(epochs=2), digits, progress=True)
    assert "\r" not in capsys.readouterr().err


def test_reproduce_into_a_log_prints_lines_named_by_model(tmp_path, monkeypatch, capsys):
    """``jmvae reproduce`` in one process with standard error not a terminal: each model's training
    and evaluation print lines tagged with the model (here a minute passes at every reading of the
    clock), and no bar."""
    from jmvae.cli import main

    clock = iter(range(0, 10**9, 61))
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: float(next(clock))))
    code = main(["reproduce", "digits", "--out", str(tmp_path / "t"), "--models", "vae", "--epochs", "1",
                 "--latent-dim", "4", "--hidden-dim", "16", "--k", "5", "--n-prior", "10", "--limit", "20",
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "[vae] step 2/15, " in err and "[vae] step 15/15, " in err, err
    assert "[evaluate vae] batch 1/1, " in err, err
    assert "\r" not in err, err
