from mlregistry.models import Status


def test_registered_version_is_in_testing(testing_version):
    assert testing_version.status == Status.TESTING
    assert testing_version.version == "1.0.0"
