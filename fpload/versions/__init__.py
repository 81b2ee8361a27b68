"""Published dataset versions: open, list, show and verify.

Example::

    from fpload.versions import open_version, list_versions, verify_version
    v = open_version("versions/thumbs")        # latest version of the name 'thumbs'
    problems = verify_version(v)               # [] when every shard matches its manifest
"""

from fpload.versions._registry import Version, describe, list_versions, open_version, verify_version

__all__ = ["Version", "open_version", "list_versions", "verify_version", "describe"]
