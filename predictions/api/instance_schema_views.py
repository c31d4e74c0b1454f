"""GET /api/v1/models/{name}/schema (docs/api.md#instance-schema): the JSON Schema of the
instances the live version takes."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.api_views import APIView
from core.errors import ModelNotReadyError
from mlregistry import selectors as registry
from predictions.api.auth import model_for_client
from predictions.api.serializers import ErrorEnvelopeSerializer
from predictions.instance_schema import DIALECT, instance_json_schema
from predictions.models import SCOPE_READ


class InstanceSchemaSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="the model named in the path")
    served_by = serializers.CharField(help_text="the model whose production version answers "
                                                "this key's predictions: the key's client's "
                                                "own model when it has one, else `model`")
    version = serializers.CharField(help_text="its production version")
    model_sha256 = serializers.CharField()
    dialect = serializers.CharField(help_text=DIALECT)
    instance_schema = serializers.DictField(
        help_text="JSON Schema (draft 2020-12) of one instance: a closed object, each input "
                  "feature required with its type, bounds and categories")


class ModelInstanceSchemaView(APIView):
    """The JSON Schema of one instance of the model's production version: what predict and
    explain take (docs/api.md#instance-schema). For a key bound to a client whose own model
    of this name is live, that model's; 503 `model_not_ready` without a production version,
    as predict."""

    api_key_scope = SCOPE_READ

    @extend_schema(responses={200: InstanceSchemaSerializer,
                              **{status: OpenApiResponse(ErrorEnvelopeSerializer)
                                 for status in (401, 403, 404, 429, 503)}})
    def get(self, request, name: str):
        model = model_for_client(request, registry.model_get(name=name))
        served, version = model, None
        bound = request.auth.client_id
        if bound and not model.client_id:
            own = model.client_models.filter(client_id=bound).first()
            version = own and registry.model_production_version(model=own)
            served = own if version else model
        version = version or registry.model_production_version(model=served)
        if version is None:
            raise ModelNotReadyError(f"{served.name} has no production version",
                                     details={"model": served.name})
        return Response({
            "model": model.name, "served_by": served.name, "version": version.version,
            "model_sha256": version.model_sha256, "dialect": DIALECT,
            "instance_schema": instance_json_schema(
                feature_schema=version.feature_schema,
                title=f"{served.name} {version.version} instance"),
        })
