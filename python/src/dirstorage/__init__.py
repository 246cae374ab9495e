"""dirstorage: ZODB's DirectoryStorage, with the engine in C.

    from dirstorage import FullStorage
    import ZODB
    db = ZODB.DB(FullStorage('/srv/ds', create=True))

ZConfig (zope.conf, zeo.conf):

    %import dirstorage
    <dirstorage>
      path /srv/ds
    </dirstorage>
"""
from .storage import DirectoryStorageError
from .storage import FullStorage
from .storage import PackNotSupported

__all__ = ["FullStorage", "DirectoryStorageError", "PackNotSupported"]
