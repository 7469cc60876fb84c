"""faust tables whose in-memory data is a mapping of ours (the planner's area index).

faust's memory store keeps a plain dict plus a second dict of every key's partition; at city
scale that is the directory's memory problem again. These tables keep faust's part (changelog,
recovery before the agents run, at-least-once) and let the data be a compact mapping that the
planner can also read by kelurahan. Keys and values are raw bytes, and ``key_type=bytes``
makes faust's recovery read the changelog keys as raw bytes too (not JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, cast

import faust
from faust.stores import memory

from stream_processors.partitions import partition_of

# Which partition a stored key belongs to, so a worker forgets the partitions it lost.
KeyPartition = Callable[[bytes], int]


class MappingStore(memory.Store[bytes, bytes]):
    """faust's memory store over the table's own mapping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # sets self.table (after faust's __post_init__)
        self.data: MutableMapping[bytes, bytes] = cast(MappingTable, self.table).mapping

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        data = self.data
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:
                data.pop(key, None)
            else:
                data[key] = to_value(event.value)

    async def on_recovery_completed(self, active_tps: set[Any], standby_tps: set[Any]) -> None:
        cast(MappingTable, self.table).keep_partitions({tp.partition for tp in active_tps})


class MappingTable(faust.Table[bytes, bytes]):
    """A bytes -> bytes table stored in ``mapping``; ``key_partition`` says where a key lives
    (only the active partitions are kept after each rebalance)."""

    def __init__(self, app: faust.App, *, name: str, partitions: int,
                 mapping: MutableMapping[bytes, bytes], key_partition: KeyPartition,
                 forget: Callable[[set[int]], None] | None = None, **kwargs: Any) -> None:
        super().__init__(app, name=name, partitions=partitions, key_type=bytes,
                         value_type=bytes, **kwargs)
        self.mapping = mapping
        self.partition_count = partitions
        self._partition_of_key = key_partition
        self._forget = forget

    def _new_store(self) -> MappingStore:
        return MappingStore("memory://", self.app, self, table_name=self.name,
                            key_type=self.key_type, value_type=self.value_type,
                            key_serializer=self.key_serializer,
                            value_serializer=self.value_serializer, options=self.options)

    def keep_partitions(self, active: set[int]) -> None:
        if active >= set(range(self.partition_count)):
            return  # this worker holds everything: nothing to forget
        if self._forget is not None:
            self._forget(active)
            return
        for key in [k for k in self.mapping if self._partition_of_key(k) not in active]:
            del self.mapping[key]


def add_table(app: faust.App, name: str, partitions: int, mapping: MutableMapping[bytes, bytes],
              *, key_partition: KeyPartition | None = None,
              forget: Callable[[set[int]], None] | None = None) -> MappingTable:
    """Declare a :class:`MappingTable`; keys default to living where the producers' default
    partitioner puts them."""

    def by_key(key: bytes) -> int:
        return partition_of(key.decode(), partitions)

    table = MappingTable(app, name=name, partitions=partitions, mapping=mapping,
                         key_partition=key_partition or by_key, forget=forget,
                         beacon=app.tables.beacon)
    return cast(MappingTable, app.tables.add(table))


class InternedValues(MutableMapping[bytes, bytes]):
    """A dict whose values are shared: many keys, few distinct values (a person's kelurahan
    list), so each key costs its own bytes and a slot, not a copy of the value."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._values: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        return self._data[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._data[key] = self._values.setdefault(value, value)

    def __delitem__(self, key: bytes) -> None:
        del self._data[key]

    def __iter__(self) -> Any:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)
