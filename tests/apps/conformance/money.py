"""A custom class crossing the durable boundary: it is serialised by its to_json/from_json."""

from __future__ import annotations


class Money:
    def __init__(self, cents: int, currency: str) -> None:
        self.cents, self.currency = cents, currency

    @staticmethod
    def to_json(obj: Money) -> dict:
        return {"cents": obj.cents, "currency": obj.currency}

    @staticmethod
    def from_json(data: dict) -> Money:
        return Money(data["cents"], data["currency"])
