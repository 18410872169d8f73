import time


def main(payload: int) -> int:
    time.sleep(0.25)
    return payload
