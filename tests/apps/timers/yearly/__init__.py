import azure.functions as func
from timer_log import record


def main(timer: func.TimerRequest) -> None:
    record("yearly", timer)
