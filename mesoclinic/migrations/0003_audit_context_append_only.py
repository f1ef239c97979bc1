from django.db import migrations

# pghistory upserts a context row while a request runs (its metadata may grow), so
# the context table cannot refuse every UPDATE like the event tables do. It refuses
# deletes and any update that rewrites who/when: id and created_at.
FORWARD = """
CREATE OR REPLACE FUNCTION mesoclinic_context_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit context rows cannot be deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'audit context rows cannot be rewritten';
    END IF;
    IF (OLD.metadata - 'url') ? 'user' AND (NEW.metadata->'user') IS DISTINCT FROM (OLD.metadata->'user') THEN
        RAISE EXCEPTION 'audit context user cannot be changed';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER mesoclinic_context_guard BEFORE UPDATE OR DELETE ON pghistory_context
    FOR EACH ROW EXECUTE FUNCTION mesoclinic_context_guard();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS mesoclinic_context_guard ON pghistory_context;
DROP FUNCTION IF EXISTS mesoclinic_context_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("mesoclinic", "0002_roles"), ("pghistory", "0007_auto_20250421_0444")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
