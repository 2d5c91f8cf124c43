"""Settings: the generated secret key is created once, even by processes starting together."""

import multiprocessing

from portal.config import load_config


def _key(path, queue):
    queue.put(load_config(path, environ={})["SECRET_KEY"])


def test_secret_key_when_unset_is_generated_once_and_kept(tmp_path):
    first = load_config(tmp_path, environ={})["SECRET_KEY"]
    assert len(first) == 64
    assert load_config(tmp_path, environ={})["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secret_key_when_processes_start_together_is_the_same_for_all(tmp_path):
    queue = multiprocessing.get_context("fork").Queue()
    procs = [
        multiprocessing.get_context("fork").Process(target=_key, args=(tmp_path, queue)) for _ in range(6)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    keys = {queue.get(timeout=5) for _ in procs}
    assert len(keys) == 1
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".secret_key-")]


def test_secret_key_when_set_in_environment_is_used():
    assert (
        load_config("/nonexistent-instance", environ={"SECRET_KEY": "from-env"})["SECRET_KEY"] == "from-env"
    )
