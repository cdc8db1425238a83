"""`python -m hotline.web.rpc_methods`: rewrite the catalogue table of docs/xmlrpc.md from the registry."""

from __future__ import annotations

from hotline.web.rpc_methods import DOC_PATH, update_docs

if __name__ == "__main__":
    DOC_PATH.write_text(update_docs(DOC_PATH.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOC_PATH}")
