"""Fault injection for the fault table, in this process and the workers it forks; loaded by
``sitecustomize`` only when ``MVTEC2COCO_FAULT`` is set:

- ``enospc:NEEDLE`` (or ``eio:``, ``erofs:``): every write to a path containing NEEDLE fails;
- ``eacces:NEEDLE``: listing or reading a path containing NEEDLE fails with "Permission denied",
  as for an unreadable folder or file (the tests run as root, which permissions do not stop).
"""

import builtins
import errno
import io
import os
import shutil

_KIND, _, _NEEDLE = os.environ.get("MVTEC2COCO_FAULT", "").partition(":")
_CODES = {"enospc": errno.ENOSPC, "eio": errno.EIO, "erofs": errno.EROFS, "eacces": errno.EACCES}


def _hit(path) -> bool:
    try:
        return _NEEDLE in os.fsdecode(os.fspath(path))
    except TypeError:  # a file descriptor
        return False


def _fail(path):
    code = _CODES[_KIND]
    raise OSError(code, os.strerror(code), os.fsdecode(os.fspath(path)))


_open = io.open
_os_open = os.open
_mkdir = os.mkdir
_link = os.link
_symlink = os.symlink
_copyfile = shutil.copyfile
_replace = os.replace


def _open_patched(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wax+") and _hit(file):
        _fail(file)
    return _open(file, mode, *args, **kwargs)


def _os_open_patched(path, flags, *args, **kwargs):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _hit(path):
        _fail(path)
    return _os_open(path, flags, *args, **kwargs)


def _two(real):
    def patched(src, dst, *args, **kwargs):
        if _hit(dst):
            _fail(dst)
        return real(src, dst, *args, **kwargs)
    return patched


def _mkdir_patched(path, *args, **kwargs):
    if _hit(path):
        _fail(path)
    return _mkdir(path, *args, **kwargs)


_scandir = os.scandir


def _read_open(path, flags, *args, **kwargs):
    if _hit(path):
        _fail(path)
    return _os_open(path, flags, *args, **kwargs)


def _read_io_open(file, mode="r", *args, **kwargs):
    if _hit(file):
        _fail(file)
    return _open(file, mode, *args, **kwargs)


def _scandir_patched(path="."):
    if _hit(path):
        _fail(path)
    return _scandir(path)


if _KIND == "eacces" and _NEEDLE:
    os.scandir = _scandir_patched
    os.open = _read_open
    builtins.open = io.open = _read_io_open
elif _KIND in _CODES and _NEEDLE:
    builtins.open = io.open = _open_patched
    os.open = _os_open_patched
    os.mkdir = _mkdir_patched
    os.link, os.symlink, shutil.copyfile, os.replace = _two(_link), _two(_symlink), _two(_copyfile), _two(_replace)
