"""The API's view base and list pagination (docs/api.md#query-parameters-bodies-and-methods,
docs/api.md#pagination).

Every API view declares the query parameters it takes (`query_parameters`, plus its
paginator's); any other one is refused with 400 `invalid_query_parameter` rather than
silently ignored, so `?version=9.9.9` on an endpoint that has no such parameter is an
error the client hears about. Lists that grow are paginated by `limit`/`offset`, checked
as strictly: a value that is not a whole number in range is refused too.
"""

from rest_framework import views
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from core.errors import QueryParameterError


def _refuse(name: str, code: str, message: str):
    raise QueryParameterError(f"invalid query parameter: {message}",
                              details=[{"index": None, "field": name, "code": code,
                                        "message": message}])


class ListPagination(LimitOffsetPagination):
    """`?limit=` (1..max_limit, default default_limit) and `?offset=` (0 or more) over a list,
    answered as `{"count", "next", "previous", "results"}`."""

    default_limit = 100
    max_limit = 1000

    def _whole_number(self, request, name: str, *, minimum: int, maximum: int | None):
        text = request.query_params.get(name)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit()):
            _refuse(name, "wrong_type", f"{name} must be a whole number")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            _refuse(name, "out_of_bounds", f"{name} must be {bounds}")
        return value

    def get_limit(self, request) -> int:
        limit = self._whole_number(request, self.limit_query_param, minimum=1,
                                   maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request) -> int:
        offset = self._whole_number(request, self.offset_query_param, minimum=0, maximum=None)
        return offset or 0

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: {"minimum": 1, "maximum": self.max_limit,
                                           "default": self.default_limit},
                  self.offset_query_param: {"minimum": 0, "default": 0}}
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters

    def query_parameters(self) -> tuple[str, ...]:
        return (self.limit_query_param, self.offset_query_param)


def paginated_response(*, view, request, items, present=lambda item: item) -> Response:
    """One page of `items` (a list or a queryset: counted, then sliced) as the view's
    paginator answers it; `present` turns each item of the page into its JSON form."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(items, request, view=view)
    return paginator.get_paginated_response([present(item) for item in page])


class APIView(views.APIView):
    """DRF's APIView that refuses undeclared query parameters (400 `invalid_query_parameter`,
    each one in `details`), after authentication: a request without a key hears 401 first."""

    query_parameters: tuple[str, ...] = ()
    pagination_class: type[ListPagination] | None = None

    def accepted_query_parameters(self) -> set[str]:
        paginated = self.pagination_class().query_parameters() if self.pagination_class else ()
        return {*self.query_parameters, *paginated}

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        accepted = self.accepted_query_parameters()
        unknown = [name for name in request.query_params if name not in accepted]
        if unknown:
            unknown = [name[:100] for name in unknown]  # echoed: a long name is cut
            named = ", ".join(repr(name) for name in unknown)
            raise QueryParameterError(
                f"invalid query parameter: this operation takes no {named}",
                details=[{"index": None, "field": name, "code": "unexpected_field",
                          "message": "is not a query parameter of this operation"}
                         for name in unknown])
