from money import Money


def main(payload: Money) -> Money:
    assert isinstance(payload, Money), type(payload)  # the worker rebuilt it
    return Money(payload.cents * 6 // 5, payload.currency)
