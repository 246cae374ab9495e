"""ZConfig datatype for <dirstorage> sections (component.xml)."""
from ZODB.config import BaseConfig


class DirStorageConfig(BaseConfig):

    def open(self):
        from .storage import FullStorage
        c = self.config
        return FullStorage(c.path, create=c.create, read_only=c.read_only,
                           synchronous=c.synchronous, format=c.format,
                           control=c.control,
                           name=self.name or None)
