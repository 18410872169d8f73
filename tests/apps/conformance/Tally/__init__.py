"""A durable entity: a number to add to, or a list to append to, one operation at a time."""

import azure.durable_functions as df


def entity_function(context: df.DurableEntityContext):
    operation = context.operation_name
    if operation == "add":
        context.set_state(context.get_state(lambda: 0) + context.get_input())
    elif operation == "append":
        context.set_state([*context.get_state(list), context.get_input()])
    elif operation == "get":
        context.set_result(context.get_state(lambda: 0))
    elif operation == "fail":
        raise ValueError("boom")
    elif operation == "delete":
        context.destruct_on_exit()


main = df.Entity.create(entity_function)
