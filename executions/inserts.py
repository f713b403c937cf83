"""One SQL statement for a new execution and its first event (PostgreSQL).

Every start writes two rows that must exist together. As two INSERTs in a transaction that is four round
trips to PostgreSQL (BEGIN, INSERT, INSERT, COMMIT) on the path from a click or an API call to a worker.
A data-modifying CTE writes both in one atomic statement, so when nothing else has to join the transaction
(no lifecycle subscriber writes rows for the event) a start is one round trip. The SQL of each INSERT is
Django's own (its compiler, with the models' defaults and adapters); only the glue is written here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Field, Model, QuerySet
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery
from django.utils import timezone

from executions.models import Execution, ExecutionEvent


def supported() -> bool:
    return connection.vendor == "postgresql"


def _cursor() -> Any:
    # Prepared once per connection where the backend offers it (heptora.db.postgresql): no parse and plan
    # on every start.
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()


def _fields(model: type[Model], exclude: tuple[str, ...]) -> list[Field]:
    return [f for f in model._meta.local_concrete_fields if not f.primary_key and f.attname not in exclude]


def _insert_sql(obj: Model, *, exclude: tuple[str, ...] = ()) -> tuple[str, list[str], tuple[object, ...]]:
    """The INSERT Django would run for ``obj`` (without its primary key and the ``exclude`` columns)."""
    fields = _fields(type(obj), exclude)
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, [f.column for f in fields], tuple(params)


def _insert_params(obj: Model, *, exclude: tuple[str, ...] = ()) -> tuple[object, ...]:
    """The parameters of :func:`_insert_sql`, prepared exactly as its compiler does (``pre_save`` with add,
    then ``get_db_prep_save``), without compiling the SQL again: that was a tenth of every start's time."""
    return tuple(f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection)
                 for f in _fields(type(obj), exclude))


@functools.cache
def _statement(vendor_key: str) -> str:
    """The CTE, built once per process from Django's compiler output for a sample pair of rows."""
    execution = Execution(process_id=0, created_at=timezone.now())
    event = ExecutionEvent(execution=execution)
    execution_sql, _, _ = _insert_sql(execution)
    event_sql, event_columns, _ = _insert_sql(event, exclude=("execution_id",))
    # "INSERT INTO t (cols) VALUES (…)" -> "INSERT INTO t (execution_id, cols) SELECT id, … FROM new"
    head, values = event_sql.split(" VALUES ", 1)
    table = ExecutionEvent._meta.db_table
    quote = connection.ops.quote_name
    if not head.startswith(f"INSERT INTO {quote(table)}"):  # the shape this relies on
        raise RuntimeError(f"Unexpected INSERT from Django's compiler: {event_sql[:80]}")
    # One plain placeholder per column, so the statement serves any values (no value-dependent SQL).
    if execution_sql.count("%s") != len(_fields(Execution, ())) or values.count("%s") != len(event_columns):
        raise RuntimeError("Unexpected placeholders in Django's INSERT")
    columns = ", ".join([quote("execution_id"), *(quote(c) for c in event_columns)])
    pk = quote(Execution._meta.pk.column)
    return (
        f"WITH new AS ({execution_sql} RETURNING {pk}) "
        f"INSERT INTO {quote(table)} ({columns}) SELECT new.{pk}, "
        f"{values.strip()[1:-1]} FROM new RETURNING {quote('id')}, {quote('execution_id')}"
    )


def execution_and_event_insert(execution: Execution, event: ExecutionEvent) -> None:
    """INSERT ``execution`` and ``event`` (which belongs to it) in one statement; sets both primary keys."""
    sql = _statement(connection.vendor)
    params = _insert_params(execution) + _insert_params(event, exclude=("execution_id",))
    with _cursor() as cursor:
        cursor.execute(sql, params)
        event.pk, execution.pk = cursor.fetchone()
    event.execution = execution
    for obj in (execution, event):
        obj._state.adding = False
        obj._state.db = connection.alias


# --- A status or progress change and its event ----------------------------------------------------------


def update_with_event(executions: QuerySet[Execution], values: dict[str, Any], event: ExecutionEvent) -> bool:
    """UPDATE the execution ``executions`` selects with ``values`` and, if it matched, INSERT ``event`` for it,
    in one statement; True if it matched (the ``execution_id`` of ``event`` is the updated row's).

    A worker's checkpoint (a step, a progress report) is a conditional UPDATE, whose row count says whether
    the run still owns the execution, and an event row. As two statements in autocommit that is two round
    trips and two commits (each waits for its WAL flush) per step, on every step of every run.
    """
    query = executions.query.chain(UpdateQuery)
    query.add_update_values(values)
    update_sql, update_params = query.get_compiler(connection=connection).as_sql()
    columns, row = _event_part()
    pk = connection.ops.quote_name(Execution._meta.pk.column)
    sql = (f"WITH changed AS ({update_sql} RETURNING {pk}) "
           f"INSERT INTO {connection.ops.quote_name(ExecutionEvent._meta.db_table)} ({columns}) "
           f"SELECT changed.{pk}, {row} FROM changed RETURNING {connection.ops.quote_name('id')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, tuple(update_params) + _insert_params(event, exclude=("execution_id",)))
        found = cursor.fetchone()
    if found is None:
        return False
    event.pk = found[0]
    event._state.adding, event._state.db = False, connection.alias
    return True


def update_returning_with_event(
    executions: QuerySet[Execution], values: dict[str, Any], event: ExecutionEvent, *,
    event_from_row: dict[str, tuple[str, tuple[Any, ...]]] | None = None,
) -> Execution | None:
    """Like :func:`update_with_event`, and hand back the updated row (None if none matched).

    A status change needs the row as it is now (a claim has read nothing before it; an outcome must see a
    cancel requested meanwhile): ``UPDATE … RETURNING`` gives it in the same statement instead of a
    ``SELECT`` after it. The values are converted by the fields' own database converters, as a query's are.

    ``event_from_row``: event columns whose value depends on the updated row (the attempt a claim starts),
    as ``{column: (SQL over "changed", params)}``; the caller sets them on ``event`` from the row returned.
    """
    query = executions.query.chain(UpdateQuery)
    query.add_update_values(values)
    try:
        update_sql, update_params = query.get_compiler(connection=connection).as_sql()
    except EmptyResultSet:  # a condition nothing can match (no legal source status): as update() -> 0
        return None
    return _returning_with_event(update_sql, list(update_params), event, event_from_row, cursor=connection.cursor)


def status_change_returning(
    *, pk: int, statuses: Sequence[str], values: dict[str, Any], event: ExecutionEvent, lease: str | None = None,
    unwatched_only: bool = False, increment: tuple[str, ...] = (),
    event_from_row: dict[str, tuple[str, tuple[Any, ...]]] | None = None,
) -> Execution | None:
    """:func:`update_returning_with_event` for the conditions of a status change, as one prepared statement.

    UPDATE execution ``pk`` if its status is one of ``statuses`` (its lease ``lease``; not watched, if
    ``unwatched_only``) with ``values`` (and each ``increment`` column + 1). Every run of every worker
    makes two of these (the claim, the outcome): their SQL is written once per shape instead of compiled
    by the ORM each time, and PostgreSQL prepares it once per connection.
    """
    if not statuses:
        return None
    meta = Execution._meta
    sql = _status_change_sql(tuple(values), lease is not None, unwatched_only, increment)
    params = [meta.get_field(name).get_db_prep_save(value, connection=connection) for name, value in values.items()]
    params += [pk, list(statuses), *([lease] if lease is not None else [])]
    return _returning_with_event(sql, params, event, event_from_row, cursor=_cursor)


@functools.cache
def _status_change_sql(names: tuple[str, ...], by_lease: bool, unwatched_only: bool,
                       increment: tuple[str, ...]) -> str:
    meta, quote = Execution._meta, connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in names]
    sets = [f"{c} = %s" for c in columns] + [f"{quote(c)} = {quote(c)} + 1" for c in increment]
    where = [f"{quote(meta.pk.column)} = %s", f"{quote('status')} = ANY(%s)"]
    where += [f"{quote('lease')} = %s"] if by_lease else []
    where += [f"NOT {quote('watched')}"] if unwatched_only else []
    return f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(where)}"


def _returning_with_event(
    update_sql: str, update_params: list[Any], event: ExecutionEvent,
    event_from_row: dict[str, tuple[str, tuple[Any, ...]]] | None, *, cursor: Callable[[], Any],
) -> Execution | None:
    columns, _ = _event_part()
    event_columns, placeholders = _event_columns()
    event_params = _insert_params(event, exclude=("execution_id",))
    row, params = [], []
    for column, placeholder, param in zip(event_columns, placeholders, event_params, strict=True):
        if event_from_row and column in event_from_row:
            expression, extra = event_from_row[column]
            row.append(expression)
            params.extend(extra)
        else:
            row.append(placeholder)
            params.append(param)
    returning, converters = _returning()
    quote = connection.ops.quote_name
    pk = quote(Execution._meta.pk.column)
    sql = (f"WITH changed AS ({update_sql} RETURNING {returning}), "
           f"event AS (INSERT INTO {quote(ExecutionEvent._meta.db_table)} ({columns}) "
           f"SELECT changed.{pk}, {', '.join(row)} FROM changed RETURNING {quote('id')}) "
           f"SELECT changed.*, event.{quote('id')} FROM changed, event")
    with cursor() as c:
        c.execute(sql, (*update_params, *params))
        found = c.fetchone()
    if found is None:
        return None
    *stored, event.pk = found
    for index, column, field_converters in converters:
        for convert in field_converters:
            stored[index] = convert(stored[index], column, connection)
    execution = Execution.from_db(connection.alias, _attnames(), stored)
    event.execution = execution
    event._state.adding, event._state.db = False, connection.alias
    return execution


@functools.cache
def _attnames() -> list[str]:
    return [f.attname for f in Execution._meta.concrete_fields]


@functools.cache
def _returning() -> tuple[str, list[tuple[int, Any, list[Any]]]]:
    """Every column of an execution, in field order, and per column the converters a query would apply."""
    fields = Execution._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(Execution._meta.db_table)
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if found:
            converters.append((index, column, found))
    return ", ".join(connection.ops.quote_name(f.column) for f in fields), converters


@functools.cache
def _event_part() -> tuple[str, str]:
    """The event INSERT's column list (``execution_id`` first) and its row of placeholders, from Django's own."""
    columns, placeholders = _event_columns()
    quote = connection.ops.quote_name
    return ", ".join([quote("execution_id"), *(quote(c) for c in columns)]), ", ".join(placeholders)


@functools.cache
def _event_columns() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The event INSERT's columns (without ``execution_id``) and one placeholder each, from Django's own."""
    event_sql, event_columns, _ = _insert_sql(ExecutionEvent(execution_id=0), exclude=("execution_id",))
    _, values = event_sql.split(" VALUES ", 1)
    placeholders = tuple(p.strip() for p in values.strip()[1:-1].split(","))
    if len(placeholders) != len(event_columns) or any(p.count("%s") != 1 for p in placeholders):
        raise RuntimeError("Unexpected placeholders in Django's INSERT")
    return tuple(event_columns), placeholders
