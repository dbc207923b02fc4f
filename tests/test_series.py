import hashlib

import pytest

from ktest.base.errors import BadSeriesFile, EmptySeries, NotAPatch, SeriesNotFound
from fakekernel import git, make_tree
from ktest.host.series import load_series


def test_directory_in_name_order_skips_cover(fake_series):
    s = load_series(fake_series)
    assert [p.subject for p in s.patches] == ["net: change b", "net: dev warns"]
    assert s.cover is not None and "SUBJECT HERE" in s.cover
    assert [p.index for p in s.patches] == [1, 2]
    assert s.patches[0].author.startswith("T <t@e>")
    assert s.patches[0].sha256 == hashlib.sha256(
        sorted(fake_series.glob("0001-*"))[0].read_text().encode()).hexdigest()


def test_series_file_orders_patches(fake_series):
    files = sorted(f.name for f in fake_series.glob("000[12]-*"))
    (fake_series / "series").write_text(f"# reversed\n{files[1]}\n\n{files[0]}\n")
    s = load_series(fake_series)
    assert [p.subject for p in s.patches] == ["net: dev warns", "net: change b"]


def test_series_file_naming_missing_patch(fake_series):
    (fake_series / "series").write_text("nope.patch\n")
    with pytest.raises(BadSeriesFile, match="nope.patch"):
        load_series(fake_series)


def test_single_patch_file(fake_series):
    f = sorted(fake_series.glob("0001-*"))[0]
    s = load_series(f)
    assert len(s.patches) == 1 and s.patches[0].subject == "net: change b"


def test_mbox_with_cover_letter(tmp_path, fake_series):
    mbox = tmp_path / "series.mbox"
    mbox.write_text("".join(f.read_text() for f in sorted(fake_series.glob("*.patch"))))
    s = load_series(mbox)
    assert [p.subject for p in s.patches] == ["net: change b", "net: dev warns"]
    assert [p.name for p in s.patches] == ["series.mbox#2", "series.mbox#3"]
    assert s.cover


def test_patchset_hash_is_kcidb_shaped(fake_series):
    s = load_series(fake_series)
    want = hashlib.sha256("".join(p.sha256 + "\n" for p in s.patches).encode()).hexdigest()
    assert s.patchset_hash == want


def test_missing_path(tmp_path):
    with pytest.raises(SeriesNotFound):
        load_series(tmp_path / "nope")


def test_not_a_patch(tmp_path):
    f = tmp_path / "notes.patch"
    f.write_text("just some notes\nwith no headers\n")
    with pytest.raises(NotAPatch, match="no mail headers"):
        load_series(f)


def test_mail_without_diff(tmp_path):
    f = tmp_path / "x.patch"
    f.write_text("From: a <a@b>\nSubject: [PATCH] nothing\n\nno diff here\n")
    with pytest.raises(NotAPatch, match="has no diff"):
        load_series(f)


def test_binary_file_is_not_a_patch(tmp_path):
    f = tmp_path / "x.patch"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(NotAPatch, match="UTF-8"):
        load_series(f)


def test_empty_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptySeries):
        load_series(tmp_path / "empty")


def test_only_cover_letter_is_empty(tmp_path, fake_series):
    d = tmp_path / "coveronly"
    d.mkdir()
    (d / "0000-cover-letter.patch").write_text((fake_series / "0000-cover-letter.patch").read_text())
    with pytest.raises(EmptySeries):
        load_series(d)


def test_expected_json_is_read(fake_series):
    (fake_series / "expected.json").write_text('{"improves": ["x"]}')
    assert load_series(fake_series).expected == {"improves": ["x"]}


def _branch(tree, edits):
    """Commits on a branch `dev` of the tree (the user's own work)."""
    git(tree, "checkout", "-q", "-b", "dev")
    for f, text, subject in edits:
        (tree / f).write_text(text)
        git(tree, "commit", "-q", "-am", subject)
    git(tree, "checkout", "-q", "master")


def test_a_revision_range_is_a_series_of_its_commits(tmp_path):
    from ktest.host.series import load, looks_like_range

    tree = make_tree(tmp_path / "linux")
    _branch(tree, [("net/core/link_watch.c", "int a;\nint b2;\nint c;\n", "net: change b"),
                   ("net/core/dev.c", "int d2;\n", "net: change d")])
    ids = git(tree, "rev-list", "--reverse", "v6.12.99..dev").split()
    assert looks_like_range("v6.12.99..dev") and not looks_like_range(str(tree))
    s = load("v6.12.99..dev", tree)
    assert [p.commit for p in s.patches] == ids, "the user's own commits, oldest first"
    assert [p.subject for p in s.patches] == ["net: change b", "net: change d"]
    assert s.range["start"] == git(tree, "rev-parse", "v6.12.99^{commit}").strip()
    assert s.range["end"] == ids[-1] and s.range["spec"] == "v6.12.99..dev" and s.name == "v6.12.99..dev"
    assert "+int b2;" in s.patches[0].text and s.patches[0].text.endswith("\n")
    assert s.to_json()["range"]["start_rev"] == "v6.12.99"
    assert load("v6.12.99..dev", tree).patchset_hash == s.patchset_hash, "the same range hashes the same"
    assert load("dev~1..dev", tree).patches[0].commit == ids[1]
