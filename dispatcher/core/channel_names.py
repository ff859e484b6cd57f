"""Channel names: the ways a member can be reached, each with the contact point it reaches.

A channel's name is what charters, members and deliveries write (``sms``, ``voice``). The
four channels of the service are defined here. A vendor package that brings a channel of its
own defines its name when the channel registry (``channels.registry``) registers its class, so
that charters may name it with no edit here.

``ChannelName`` behaves as a ``StrEnum`` would: ``ChannelName("sms") is ChannelName.SMS``,
``.value``, iteration over the names in the order they were defined, pickling by value, and a
pydantic field that refuses a name nobody defined (an ``enum`` error listing the names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class Contact(StrEnum):
    """The contact points a member may have; each channel sends to one of them (its address)."""

    PHONE = "phone"
    EMAIL = "email"
    TELEGRAM = "telegram"  # a Telegram chat id
    WHATSAPP = "whatsapp"  # the mobile number, once the member has consented to WhatsApp (``Member.whatsapp_consent``)


class _Names(type):
    """The class of ``ChannelName``: iterating over it gives the names defined, in order, like an enumeration's."""

    _defined: dict[str, ChannelName]

    def __iter__(cls) -> Iterator[ChannelName]:
        return iter(tuple(cls._defined.values()))

    def __len__(cls) -> int:
        return len(cls._defined)


class ChannelName(str, metaclass=_Names):
    """The name of a channel that is defined here, with the contact point it reaches (``contact``)."""

    SMS: ClassVar[ChannelName]
    EMAIL: ClassVar[ChannelName]
    TELEGRAM: ClassVar[ChannelName]
    VOICE: ClassVar[ChannelName]

    _defined: ClassVar[dict[str, ChannelName]] = {}
    _builtin: ClassVar[frozenset[str]] = frozenset()
    contact: Contact

    def __new__(cls, value: object) -> ChannelName:
        """The defined name equal to ``value``; raises ``ValueError`` if there is none."""
        found = cls._defined.get(value) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{value!r} is not a valid ChannelName")
        return found

    @classmethod
    def define(cls, value: str, *, contact: Contact) -> ChannelName:
        """The channel named ``value``, defined now if it is new.

        Raises ``ValueError`` if the name is not 1 to 32 lower-case letters, digits or ``_``
        (starting with a letter), or is defined already with another contact point.
        """
        known = cls._defined.get(value)
        if known is not None:
            if known.contact is not contact:
                raise ValueError(f"channel {value!r} reaches the {known.contact.value}, not the {contact.value}")
            return known
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r} cannot name a channel: lower-case letters, digits and _, a letter first")
        name = str.__new__(cls, value)
        name.contact = contact
        cls._defined[value] = name
        return name

    @classmethod
    def forget(cls, value: str) -> None:
        """Undefine a name a vendor package defined (the registry unregistering it); the service's own stay."""
        if value not in cls._builtin:
            cls._defined.pop(value, None)

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"ChannelName({self.value!r})"

    def __reduce__(self) -> tuple[type[ChannelName], tuple[str]]:
        return ChannelName, (self.value,)

    def __copy__(self) -> ChannelName:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ChannelName:
        return self

    @classmethod
    def _validate(cls, value: Any) -> ChannelName:
        found = cls._defined.get(value) if isinstance(value, str) else None
        if found is None:
            expected = [repr(name) for name in cls._defined]
            listed = f"{', '.join(expected[:-1])} or {expected[-1]}" if len(expected) > 1 else "".join(expected)
            raise PydanticCustomError("enum", "Input should be {expected}", {"expected": listed})
        return found

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str.__str__, when_used="json"),
            ref="ChannelName",
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"enum": [name.value for name in cls], "title": "ChannelName", "type": "string"}


ChannelName.SMS = ChannelName.define("sms", contact=Contact.PHONE)
ChannelName.EMAIL = ChannelName.define("email", contact=Contact.EMAIL)
ChannelName.TELEGRAM = ChannelName.define("telegram", contact=Contact.TELEGRAM)
ChannelName.VOICE = ChannelName.define("voice", contact=Contact.PHONE)
ChannelName._builtin = frozenset(ChannelName._defined)
