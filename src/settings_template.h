/*
 * settings_template.h - the text of config/settings as the original
 * mkds.py writes it (sync 1, md5 on), split around the two lines that vary:
 *   SETTINGS_TEMPLATE_HEAD "format: <format>\n"
 *   SETTINGS_TEMPLATE_MIDDLE "classname: <classname>\n"
 *   SETTINGS_TEMPLATE_TAIL
 * Byte for byte what the original writes: storages made by either program
 * have the same settings file (a test compares with the fixtures).
 * Included by mkds.c only.
 */
#ifndef DS_SETTINGS_TEMPLATE_H
#define DS_SETTINGS_TEMPLATE_H

#define SETTINGS_TEMPLATE_HEAD \
	"\n" \
	"[structure]\n" \
	"\n"

#define SETTINGS_TEMPLATE_MIDDLE \
	"version: 0.11\n" \
	"\n" \
	"[md5policy]\n" \
	"\n" \
	"# When do we use md5?\n" \
	"\n" \
	"# calculate md5 on every write. This incurs a performance cost, but\n" \
	"# provides a very high degree of confidence in data integrity\n" \
	"write: 1\n" \
	"\n" \
	"# check md5 on every read. This incurs a performance penalty. You may\n" \
	"# want to change this to '0' if your ZEO server is using alot of\n" \
	"# processor time\n" \
	"read: 1\n" \
	"\n" \
	"# check the md5 of the old revision of an object, before we store\n" \
	"# a new revision. This is only really useful if are not checking\n" \
	"# md5 on every read\n" \
	"overwrite: 0\n" \
	"\n" \
	"# check when scanning the undo log\n" \
	"undolog: 1\n" \
	"\n" \
	"# check when performing an undo\n" \
	"undo: 1\n" \
	"\n" \
	"# check when loading a historical revision, or when creating a list\n" \
	"# of historical revisions\n" \
	"history: 1\n" \
	"\n" \
	"# check when packing\n" \
	"pack: 1\n" \
	"\n" \
	"[journal]\n" \
	"\n" \
	"# IO overhead is reduced by dealing with journal flushing\n" \
	"# in big batches. The parameters control how big the batches are.\n" \
	"\n" \
	"# max number of seconds between flushes\n" \
	"flush_interval: 3600\n" \
	"\n" \
	"# max number of unflushed files\n" \
	"flush_file_threshold: 2000\n" \
	"\n" \
	"# max number of unflushed transactions\n" \
	"flush_transaction_threshold: 200\n" \
	"\n" \
	"# how many batches of transactions can be in the flush queue,\n" \
	"# before we start blocking writes. This is necessary to prevent\n" \
	"# journal overload.\n" \
	"backlog: 3\n" \
	"\n" \
	"[storage]\n" \
	"\n" \
	"# What type of storage lives here\n"

#define SETTINGS_TEMPLATE_TAIL \
	"\n" \
	"# How long to we spend scanning back through old transactions\n" \
	"# in history and undo log operations before giving up? (in seconds)\n" \
	"# If your storage is published using ZEO1 (and probably ZEO2) then\n" \
	"# all clients are blocked during this operation. Set this value to\n" \
	"# zero for no timeout.\n" \
	"history_timeout: 10\n" \
	"\n" \
	"# If zero, unreachable database files are deleted during packing.\n" \
	"# This is appropriate if you are using a stable version of\n" \
	"# DirectoryStorage, do not expect any problems, and really need\n" \
	"# to save a small percentage of your disk space.\n" \
	"#\n" \
	"# If greater than zero, packing will not immediately delete files.\n" \
	"# Instead of deleting, they are renamed such that normal access\n" \
	"# to the DirectoryStorage will not find them. However if you find\n" \
	"# that packing has incorrectly deleted a file, you can recover\n" \
	"# it by undoing the renaming. This option is essential if you\n" \
	"# are using a development version of DirectoryStorage. It is\n" \
	"# on by default even for stable versions because it provides\n" \
	"# a useful disaster recovery capability.\n" \
	"#\n" \
	"# The value specified here is the number of seconds which\n" \
	"# files are left in the renamed state before permanent deletion.\n" \
	"# A handy value is 864000 - ten days\n" \
	"delay_delete: 864000\n" \
	"\n" \
	"# Sometimes ZODB applications holds on to object references across\n" \
	"# transaction boundaries; They write a new object in one transaction,\n" \
	"# then write a reference to it in a later transaction. This is not\n" \
	"# strictly allowed, but it does happen in a number of unusual boundary\n" \
	"# conditions. Data loss can result if this happens at the same time\n" \
	"# as packing with a threshold time of zero. To avoid data loss, we\n" \
	"# prevent setting a pack threshold time lower than this value in\n" \
	"# seconds\n" \
	"min_pack_time: 600\n" \
	"\n" \
	"# Should DirectoryStorage check that all stored object references\n" \
	"# actually refer to a real object? If disabled, then subsequently\n" \
	"# following this reference would cause a POSKeyError. If enabled,\n" \
	"# this problem is detected before the transaction commits.\n" \
	"# This option prevents unusual boundary conditions from causing\n" \
	"# problems that are hard to distinguish from database corruption.\n" \
	"# Having this enabled is particularly useful during development.\n" \
	"# These potential problems are somewhat theoretical, therefore\n" \
	"# it is reasonably safe to disable this for a significant\n" \
	"# performance improvement in write-heavy applications.\n" \
	"check_dangling_references: 1\n" \
	"\n" \
	"# A choice of policy on how much information is kept about\n" \
	"# ancient transactions.  This transaction information is mostly used for\n" \
	"# implementing undo.\n" \
	"#   detailed\n" \
	"#     The same policy as for version 1.0, FileStorage, and most other\n" \
	"#     storages. Full details are kept about the transaction in which\n" \
	"#     an object revision was written.\n" \
	"#   undoable\n" \
	"#     A space saving optimisation over 'detailed'. Packing will discard\n" \
	"#     transaction files older than the pack threshold. There is no\n" \
	"#     chance that these transactions are undoable, therefore the main\n" \
	"#     reason for keeping the file does not apply. The one disadvantage\n" \
	"#     to this approach occurs with ancient objects that have not been\n" \
	"#     modified since before the pack threshold date. Their history\n" \
	"#     (in the History tab in Zope's Management Interface) will not\n" \
	"#     contain the URL or username for the ancient transaction in\n" \
	"#     which they were modified.\n" \
	"keep_policy: detailed\n" \
	"\n" \
	"[filesystem]\n" \
	"\n" \
	"# Controls whether data is synced to stable storage at transaction\n" \
	"# boundaries. This is necessary for durable transactions but is an\n" \
	"# avoidable performance cost if you do not need durability. For\n" \
	"# example when using copyTransactionsFrom() to copy from one storage\n" \
	"# to another this saves roughly one third of runtime.\n" \
	"sync: 1\n" \
	"\n" \
	"# When asked to shutdown the storage has two options. Firstly it\n" \
	"# can shutdown as quickly as possible, but this means it is impossible\n" \
	"# to take a backup of a shutdown storage because some transactions\n" \
	"# have half their files in the journal, and the other half in the\n" \
	"# database directory.\n" \
	"#\n" \
	"# Alternatively it can shutdown a little slower, spending a couple\n" \
	"# of seconds flushing the journal. This is probably a good compromise\n" \
	"# unless you have set the journal size to be huge.\n" \
	"#\n" \
	"# Note that it is possible to set quick_shutdown to 1, then\n" \
	"# manually force the storage into snapshot mode just before shutdown\n" \
	"# if that is what you need case by case.\n" \
	"#\n" \
	"# Note that if, when asked to close, the storage has just come out\n" \
	"# of snapshot mode and is still busy recombining, it always performs\n" \
	"# a quick shutdown. Recombination can take a very long time.\n" \
	"quick_shutdown: 0\n" \
	"\n" \
	"[windows]\n" \
	"mark: attributes\n" \
	"\n" \
	"[posix]\n" \
	"\n" \
	"# Controls how it stores one bit of information per file to hold the\n" \
	"# marked/unmarked status during the mark/sweep packing.\n" \
	"# Values are:\n" \
	"#   permissions\n" \
	"#     scrounge a bit from the file permissions; by default the\n" \
	"#     'set uid on execute' bit. This is the fastest, and generally\n" \
	"#     safe. There is little reason to change this default\n" \
	"#  file\n" \
	"#     use a seperate empty file. Use this if you dont want to\n" \
	"#     play with file permissions. Beware performance is terrible.\n" \
	"#     Almost noone will want this.\n" \
	"\n" \
	"mark: permissions\n" \
	"\n" \
	"\n" \
	"\n" \
	"# If the filesystem/sync option is set to 1, then this controls whether\n" \
	"# fsync is also used for directory operations. Turning this off will\n" \
	"# break durability in most cases. It is necessary to get DirectoryStorage\n" \
	"# to run on an NFS filesystem. Durability on NFS is untested.\n" \
	"\n" \
	"dirsync: 1\n" \
	"\n" \
	"\n" \
	"\n" \
	"# Controls whether certain classes should have their history retained\n" \
	"# for longer than the normal pack time. Each entry specifies the\n" \
	"# behavior for one class.\n" \
	"#\n" \
	"# Full.Class.Name: forever\n" \
	"#     This class will never have any history removed while it\n" \
	"#     is still reachable.\n" \
	"#\n" \
	"# Full.Class.Name: extra DAYS\n" \
	"#     This class will have its history kept for the specified\n" \
	"#     number of days longer than normal.\n" \
	"#\n" \
	"# Note that keeping extra history may not mean you can undo more,\n" \
	"# if these objects are modified in the same transaction as objects\n" \
	"# that do not have extra history.\n" \
	"\n" \
	"\n" \
	"[keepclass]\n" \
	"\n" \
	"\n"

#endif /* DS_SETTINGS_TEMPLATE_H */
