"""PostgreSQL: a model's live traffic sums to at most 100, checked by the database.

A sum over rows cannot be a CHECK constraint, so a deferred constraint trigger checks it
at commit (a deploy moves traffic between rows inside one transaction). The services
also lock the model row and check the sum first, which gives the clear error; this is the
backstop against code that bypasses them. SQLite (the embedded default) runs every write
transaction alone (BEGIN IMMEDIATE), so the services' check cannot race there.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION mlregistry_check_traffic_sum() RETURNS trigger AS $$
BEGIN
    IF (SELECT COALESCE(SUM(traffic_percentage), 0) FROM mlregistry_mlmodelversion
        WHERE model_id = NEW.model_id) > 100 THEN
        RAISE EXCEPTION 'live traffic of model % exceeds 100%%', NEW.model_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER mlregistry_traffic_sum
    AFTER INSERT OR UPDATE OF traffic_percentage, model_id ON mlregistry_mlmodelversion
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION mlregistry_check_traffic_sum();
"""

DROP = """
DROP TRIGGER IF EXISTS mlregistry_traffic_sum ON mlregistry_mlmodelversion;
DROP FUNCTION IF EXISTS mlregistry_check_traffic_sum();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("mlregistry", "0002_groups")]

    operations = [migrations.RunPython(create, drop)]
